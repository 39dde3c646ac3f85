"""Boards: components (energy models) + supply voltage + battery (+ optional harvester) + CPU timing.

A board file (``boards/<name>.json``, schema version 1)::

    {"version": 1, "name": "nrf52840_dk", "description": "...", "supply_voltage_v": 3.0,
     "components": {"cpu": "nrf52840_cpu", "radio": "nrf52840_radio", "sensor": "bme280"},
     "cpu": {"component": "cpu", "cycles_per_insn": 30, "source": "...",
             "sleep_state": "sleep", "idle_state": "idle", "run_state": "run"},
     "radio": {"component": "radio", "sleep_state": "sleep", "listen_state": "rx", "tx_state": "tx"},
     "sensors": {"default": "sensor"},
     "battery": {"model": "kibam", "capacity_mah": 230, "voltage_v": 3.0, "params": {...},
                 "self_discharge_per_year": 0.01, "cutoff_soc": 0.0, "source": "..."},
     "harvester": {"kind": "solar", "peak_w": 0.05},
     "ram_bytes": 262144}

``ns_per_insn`` = cycles_per_insn x 1e9 / the CPU's clock: the time one eBPF instruction of the
node's programs costs on this MCU. Loading is MicroPython-compatible (plain string paths, json);
it must never import host-only modules.
"""

from iotbpf.energy.battery import make_battery
from iotbpf.energy.harvest import make_harvester
from iotbpf.energy.models import ModelError, data_dirs, find_file, load_model, read_json

SCHEMA_VERSION = 1


class Board:
    """A validated board: component models, roles (cpu/radio/sensors), battery, harvester, timing."""

    def __init__(self, data, where="board", models_dir=None):
        if not isinstance(data, dict):
            raise ModelError(where + ": expected a JSON object")
        if data.get("version") != SCHEMA_VERSION:
            raise ModelError("%s: unsupported version %r (this iotbpf reads version %d)"
                             % (where, data.get("version"), SCHEMA_VERSION))
        self.name = data.get("name")
        if not isinstance(self.name, str) or not self.name:
            raise ModelError(where + ": missing 'name'")
        where = "%s (%s)" % (where, self.name)
        self.description = data.get("description", "")
        self.supply_voltage_v = data.get("supply_voltage_v")
        if isinstance(self.supply_voltage_v, bool) or not isinstance(self.supply_voltage_v, (int, float)) \
                or self.supply_voltage_v <= 0:
            raise ModelError(where + ".supply_voltage_v: expected a positive number")
        comps = data.get("components")
        if not isinstance(comps, dict) or not comps:
            raise ModelError(where + ": needs a non-empty 'components' object")
        self.models = {}
        for comp, ref in comps.items():
            if isinstance(ref, dict):
                ref = ref.get("model")
            if not isinstance(ref, str):
                raise ModelError("%s.components.%s: expected a model name" % (where, comp))
            if models_dir is not None and "/" not in ref:
                path = models_dir + "/" + ref + ("" if ".xml" in ref else ".json")
            else:
                path = find_file("energy_models", ref, ".json")
            self.models[comp] = load_model(path)
        cpu = data.get("cpu")
        if not isinstance(cpu, dict):
            raise ModelError(where + ": needs a 'cpu' object (component, cycles_per_insn, source)")
        cpu = dict(cpu)
        if cpu.get("run_state") == "max" and cpu.get("component") in self.models:
            freqs = self.models[cpu["component"]].frequencies()
            if not freqs:
                raise ModelError(where + ".cpu.run_state: 'max' needs a CPU model with frequencies")
            cpu["run_state"] = freqs[-1][1]
        self.cpu = self._role(cpu, where + ".cpu", ("sleep_state", "run_state"))
        cpi = cpu.get("cycles_per_insn")
        if isinstance(cpi, bool) or not isinstance(cpi, (int, float)) or cpi <= 0:
            raise ModelError(where + ".cpu.cycles_per_insn: expected a positive number")
        if not isinstance(cpu.get("source"), str) or len(cpu["source"]) < 12:
            raise ModelError(where + ".cpu.source: cite where cycles_per_insn comes from")
        self.cycles_per_insn = cpi
        cpu_model = self.models[self.cpu["component"]]
        self.clock_hz = cpu_model.param("clock_hz")
        self.ns_per_insn = cpi * 1e9 / self.clock_hz
        radio = data.get("radio")
        self.radio = self._role(radio, where + ".radio", ("sleep_state", "listen_state", "tx_state")) \
            if radio is not None else None
        sensors = data.get("sensors", {})
        if not isinstance(sensors, dict):
            raise ModelError(where + ".sensors: expected an object name -> component")
        for sname, comp in sensors.items():
            if comp not in self.models:
                raise ModelError("%s.sensors.%s: %r is not a component" % (where, sname, comp))
        self.sensors = sensors
        self.battery_spec = data.get("battery")
        make_battery(self.battery_spec, where + ".battery")
        self.harvester_spec = data.get("harvester")
        make_harvester(self.harvester_spec, where + ".harvester")
        self.ram_bytes = data.get("ram_bytes", 0)
        if isinstance(self.ram_bytes, bool) or not isinstance(self.ram_bytes, int) or self.ram_bytes < 0:
            raise ModelError("%s.ram_bytes: expected a byte count (integer >= 0), got %r" % (where, self.ram_bytes))
        # optional host bounds of the node (docs/runtime.md, "Work bounds"); None: the runtime's defaults
        for key in ("min_timer_period_ns", "work_budget_insns", "work_period_ns"):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ModelError("%s.%s: expected a positive integer, got %r" % (where, key, value))
            setattr(self, key, value)

    def _role(self, spec, where, states):
        if not isinstance(spec, dict):
            raise ModelError(where + ": expected an object")
        comp = spec.get("component")
        if comp not in self.models:
            raise ModelError("%s.component: %r is not one of the board's components" % (where, comp))
        model = self.models[comp]
        out = dict(spec)
        for key in states:
            st = spec.get(key)
            if st not in model.states:
                raise ModelError("%s.%s: %r is not a state of %s" % (where, key, st, model.name))
        return out

    def component(self, name):
        """The ComponentModel of component ``name``."""
        if name not in self.models:
            raise ModelError("board %s has no component %r (has: %s)" % (self.name, name,
                                                                         ", ".join(sorted(self.models))))
        return self.models[name]

    def insn_ns(self, count):
        """Integer ns that ``count`` eBPF instructions take on this board's MCU."""
        return int(count * self.ns_per_insn + 0.5)

    def make_battery(self):
        """The board's battery; a battery with a ``cell`` checks its cut-off under the board's peak
        current (``battery.pulse_a`` if the board gives it, else ``peak_current_a()``)."""
        battery = make_battery(self.battery_spec)
        if battery.cell is not None and "pulse_a" not in self.battery_spec:
            battery.set_pulse(self.peak_current_a(battery.voltage_v))
        return battery

    def peak_current_a(self, battery_v=None):
        """The node's pulse current at the battery (A): every component in its default (idle)
        state, plus the largest step one component makes to its highest-current state (a radio
        burst, say), each converted at its model's voltage to ``battery_v`` (constant power)."""
        if battery_v is None:
            battery_v = self.supply_voltage_v
        base = 0.0
        step = 0.0
        for model in self.models.values():
            scale = model.voltage_v / battery_v
            idle = model.current_a(model.default_state) * scale
            top = max(st.current_a for st in model.states.values()) * scale
            base += idle
            if top - idle > step:
                step = top - idle
        return base + step

    def make_harvester(self):
        return make_harvester(self.harvester_spec)

    def sensor_component(self, sensor):
        """Component that serves sensor ``sensor`` (a name or number), or None if the board has none."""
        comp = self.sensors.get(str(sensor))
        if comp is None:
            comp = self.sensors.get("default")
        return comp

    def __repr__(self):
        return "Board(%s: %s)" % (self.name, ", ".join(sorted(self.models)))


def load_board(name_or_path, models_dir=None):
    """Load a board by bundled name (``"nrf52840_dk"``) or JSON path, validating everything."""
    if isinstance(name_or_path, Board):
        return name_or_path
    if isinstance(name_or_path, dict):
        return Board(name_or_path, "board", models_dir)
    path = find_file("boards", str(name_or_path), ".json")
    return Board(read_json(path), path, models_dir)


def available_boards():
    """Names of bundled boards (empty on a device without the data folders)."""
    import os
    names = []
    for folder in data_dirs("boards"):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".json") and entry[:-5] not in names:
                names.append(entry[:-5])
    names.sort()
    return names
