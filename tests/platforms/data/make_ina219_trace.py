"""Writes ina219_rpi_zero2w.trace: INA219 register values for a modelled Raspberry Pi Zero 2 W load.

Run once (python tests/platforms/data/make_ina219_trace.py); the trace is committed. The registers
follow the INA219 datasheet (TI SBOS448): shunt voltage LSB 10 uV (two's complement), bus voltage
bits 15..3 with LSB 4 mV plus CNVR (bit 1) and OVF (bit 0), Current = Shunt x Calibration / 4096,
Power = Current x Bus / 5000, calibration bit 0 void (reads as 0). The load is a model, not a capture.
"""

import math
import os

SHUNT_OHMS = 0.1
MAX_EXPECTED_AMPS = 0.8
SUPPLY_V = 5.10  # the Pi's USB supply at the INA219's IN+ (high side); VBUS is measured at IN-
CABLE_OHMS = 0.12  # supply cable + connector resistance before the sensor
PERIOD_MS = 50
DURATION_MS = 30000


def configuration() -> tuple:
    """The (config, calibration) words pi-ina219 1.4.1 writes for this shunt and max current."""
    gain_volts = [0.04, 0.08, 0.16, 0.32]
    shunt_v = MAX_EXPECTED_AMPS * SHUNT_OHMS
    gain = gain_volts.index(min(v for v in gain_volts if v > shunt_v))
    current_lsb = MAX_EXPECTED_AMPS / 32800
    calibration = math.trunc(0.04096 / (current_lsb * SHUNT_OHMS))
    config = 1 << 13 | gain << 11 | 3 << 7 | 3 << 3 | 7  # 32 V range, 12-bit ADCs, continuous
    return config, calibration


def load_amps(t_ms: int, noise: float) -> float:
    """Modelled supply current: idle with Wi-Fi associated, a button-triggered burst, Wi-Fi uploads,
    and five seconds of all four cores busy."""
    amps = 0.118  # idle, HDMI off, Wi-Fi associated (power-save)
    if 8000 <= t_ms < 10000:
        amps += 0.072  # one core busy in the button handler
    if t_ms % 5000 < 150:
        amps += 0.115  # Wi-Fi transmit burst (MQTT report)
    if 18000 <= t_ms < 23000:
        amps += 0.330  # all four Cortex-A53 cores busy
    return amps + noise


def main() -> None:
    config, calibration = configuration()
    device_cal = calibration & 0xFFFE  # FS0 is void
    state = 0x2545F4914F6CDD1D
    rows = []
    truth_j = 0.0
    for t_ms in range(0, DURATION_MS, PERIOD_MS):
        state ^= (state << 13) & 0xFFFFFFFFFFFFFFFF
        state ^= state >> 7
        state ^= (state << 17) & 0xFFFFFFFFFFFFFFFF
        noise = ((state >> 11) / float(1 << 53) - 0.5) * 0.004  # +-2 mA
        amps = load_amps(t_ms, noise)
        vbus = SUPPLY_V - amps * (CABLE_OHMS + SHUNT_OHMS)
        truth_j += amps * vbus * PERIOD_MS / 1000.0
        shunt = int(round(amps * SHUNT_OHMS / 10e-6))
        bus_counts = int(round(vbus / 0.004))
        current = math.trunc(shunt * device_cal / 4096)
        power = math.trunc(current * bus_counts / 5000)
        bus = bus_counts << 3 | 0x2  # conversion ready, no overflow
        rows.append("%6d 0x%04x 0x%04x 0x%04x 0x%04x" % (t_ms, shunt & 0xFFFF, bus, power, current & 0xFFFF))
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "ina219_rpi_zero2w.trace"), "w") as out:
        out.write("# INA219 register trace (format version 1) for iotbpf.platforms.rpi.ReplayI2CBus.\n")
        out.write("# Raspberry Pi Zero 2 W on a 5.1 V supply, INA219 high side, 0.1 ohm shunt, "
                  "address 0x40.\n")
        out.write("# Register values are synthesised from a modelled load (tests/platforms/data/"
                  "make_ina219_trace.py)\n# with the datasheet's formats and equations (TI SBOS448); "
                  "not captured from hardware.\n")
        out.write("# Columns of a sample: t_ms, then registers 0x01 shunt, 0x02 bus, 0x03 power, 0x04 "
                  "current, each as the\n# 16-bit word the device sends (MSB first).\n")
        out.write("version 1\naddress 0x40\nshunt_ohms %g\n" % SHUNT_OHMS)
        out.write("max_expected_amps %g\n" % MAX_EXPECTED_AMPS)
        out.write("write 0x05 0x%04x\nwrite 0x00 0x%04x\n" % (calibration, config))
        out.write("truth_energy_j %.6f\n" % truth_j)
        out.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
