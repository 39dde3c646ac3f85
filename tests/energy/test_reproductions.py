"""Published measurements reproduced by simulation, parameters from datasheets only (issue 21).

ContikiMAC idle listening on a Tmote Sky (TelosB) at an 8 Hz channel-check rate: the radio is off
99.2-99.6 % of the time (A. Dunkels, "The ContikiMAC Radio Duty Cycling Protocol", SICS Technical
Report T2011:13, section 'Evaluation', idle radio duty cycle of 0.4-0.8 % at 8 Hz). Each channel
check is two clear-channel assessments 0.5 ms apart (ContikiMAC's design); one CCA keeps the CC2420
on for its RX calibration (12 symbol periods, the 192 us of the model's rx>tx turnaround) plus
the RSSI averaging window (8 symbol periods), both from the CC2420 datasheet SWRS041c (section
'Radio control state machine' and 'RSSI / Energy Detection'); the symbol period is 4 bits at the
model's 250 kbit/s. Nothing is fitted to the published figure.
"""

import pytest

from iotbpf.kernel.scheduler import make_scheduler

NS = 1000000000


def contikimac_idle_off_fraction(check_hz=8, seconds=600):
    probe = make_scheduler("duty_cycle", "telosb")
    radio = probe.board.models["cc2420"] if "cc2420" in probe.board.models else \
        probe.board.models[probe.radio]
    symbol_ns = 4 * NS // int(radio.param("bitrate_bps"))          # 16 us
    calibrate_ns = radio.transition("rx", "tx").time_ns              # 12 symbols = 192 us
    cca_ns = calibrate_ns + 8 * symbol_ns                            # RX on until RSSI is valid
    window_ns = 2 * cca_ns                                           # two CCAs per check
    sched = make_scheduler("duty_cycle", "telosb",
                           {"duty_period_ns": NS // check_hz, "duty_window_ns": window_ns})
    sched.boot(0)
    t = 0
    end = seconds * NS
    while True:
        wake = sched.next_wakeup_ns()
        if wake is None or wake >= end:
            break
        t = wake
        sched.advance(t)
        sched.on_wakeup(t)
    sched.advance(end)
    sched.flush()
    on_ns = sched.ledger.ns.get((sched.radio, sched.r_listen), 0)
    return 1.0 - on_ns / float(end), window_ns


def test_contikimac_idle_radio_off_fraction_on_tmote_sky_at_8_hz():
    off, window_ns = contikimac_idle_off_fraction()
    assert window_ns == 640000  # 2 x (192 + 128) us
    # Dunkels 2011 (T2011:13): radio off 99.2-99.6 % during idle listening at 8 Hz
    assert 0.992 <= off <= 0.996
    assert abs(off - 0.99488) < 0.0002  # what the datasheet timings give (see docs/energy.md)


# LoRaWAN class A lifetime against Casals, Mir, Vidal & Gomez, "Modeling the Energy Performance of
# LoRaWAN", Sensors 17(10):2364, 2017 (abstract): a 2400 mAh end-device sending one
# unconfirmed message every 5 min lasts about 1 year; with infrequent messages the lifetime tends to
# about 6 years. Parameters: the paper's measured per-phase currents and durations of its device
# (boards/casals_lorawan.json, energy_models/casals_lorawan_*.json, each figure cited), LoRaWAN's
# receive-window timing and the SX1276 time-on-air formula; nothing fitted to the lifetimes.
# Our node is apps/neutral_node (one 8-byte reading per message) on that board.

def casals_lifetime_years(period_s, days=30):
    import struct

    from iotbpf.api import Node

    node = Node("neutral_node", board="casals_lorawan", policy="batching", seed=1)
    rt = node.build()
    duty = rt.apps[0].maps[".data.duty"].values
    struct.pack_into("<Q", duty, 0, period_s * NS)  # the app re-arms its 5-minute timer with it
    rt.boot()
    rt.start_platform(days * 86400 * NS)
    rt.run_until(days * 86400 * NS)
    assert rt.dead_at_ns is None
    return node.scheduler.lifetime_days() / 365.0


@pytest.mark.parametrize("period_s, published_years", [(300, 1.0), (86400, 6.0)])
def test_lorawan_class_a_lifetime_matches_casals_2017_within_10_percent(period_s, published_years):
    ours = casals_lifetime_years(period_s)
    assert ours == pytest.approx(published_years, rel=0.10)
