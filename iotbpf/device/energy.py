"""The device's energy ledger (Energest-style integer ns per activity) and coulomb-counting state of
charge, MicroPython code; pinned with the maps, so a reset does not refill the battery. Battery
chemistry stays on the host (docs/mcu.md, "The device runtime").
"""


class Ledger:
    def __init__(self, params):
        self.floor_w = params["floor_w"]  # every component in its sleep state
        self.cpu_w = params["cpu_w"]  # CPU run minus sleep
        self.ns_per_insn = params["ns_per_insn"]
        self.tx_w = params["tx_w"]  # radio transmitting minus sleep
        self.sensor_j = params["sensor_j"]  # one sensor reading
        self.capacity_j = params["capacity_j"]
        self.soc0 = params["soc0"]
        self.leak_per_ns = params.get("leak_per_ns", 0.0)  # self-discharge, fraction of capacity
        self.cutoff = params.get("cutoff", 0.0)  # the battery is dead at this state of charge
        self.base_j = 0.0  # used before the last reset (restored from flash by the node)
        self.base_leak = 0.0
        self.t_ns = 0
        self.cpu_ns = 0
        self.tx_ns = 0
        self.reads = 0

    def advance(self, now_ns):
        if now_ns > self.t_ns:
            self.t_ns = now_ns

    def cpu(self, insns):
        self.cpu_ns += int(insns * self.ns_per_insn + 0.5)

    def used_j(self):
        return (self.base_j + (self.floor_w * self.t_ns + self.cpu_w * self.cpu_ns + self.tx_w * self.tx_ns) * 1e-9
                + self.sensor_j * self.reads)

    def leak(self):
        return self.base_leak + self.leak_per_ns * self.t_ns

    def state(self):
        """What survives a reset (the node pins it beside the maps)."""
        return {"used_j": self.used_j(), "leak": self.leak()}

    def restore(self, state):
        self.base_j = float(state.get("used_j", 0.0))
        self.base_leak = float(state.get("leak", 0.0))

    def used_uj(self):
        return int(self.used_j() * 1000000)

    def soc(self):
        return self.soc0 - self.used_j() / self.capacity_j - self.leak()

    def permille(self):
        return max(0, min(1000, int(self.soc() * 1000 + 0.5)))

    def dead(self):
        return self.soc() <= self.cutoff
