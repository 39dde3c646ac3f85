"""Energy models of components (MCU, radio, sensor, SoC, display): the JSON schema and its validating loader.

A model file (``energy_models/<name>.json``) describes one component's power states. Every state
gives a current in amperes (``current_a``, ``current_ma`` or ``current_ua``) or a power (``power_w``
or ``power_mw``, converted to current at the model's ``voltage_v`` on load), and names its
``source`` (datasheet or paper, with table/page). Transitions give a time and a current or energy.
Loading never guesses: a missing number, a missing source or an unknown version is an error.
Works under MicroPython: plain dicts, ``json``, string paths; no floats are accumulated here.

Schema (version 1)::

    {"version": 1, "name": "nrf52840_radio", "kind": "radio", "voltage_v": 3.0,
     "description": "...", "sources": {"ps": "nRF52840 Product Specification v1.1, ..."},
     "default_state": "sleep",
     "states": {"sleep": {"current_ua": 1.5, "source": "ps"}, "tx": {...}},
     "transitions": [{"from": "sleep", "to": "tx", "time_us": 140, "current_ma": 3.0, "source": "ps"}],
     "params": {"bitrate_bps": 1000000, "source": "ps", ...},
     "frequencies": [{"hz": 600000000, "power_w": 1.2, "source": "..."}]}

``source`` is either a key of ``sources`` or a full citation string. ``frequencies`` (optional, for
CPUs with DVFS) become states named ``run@<MHz>``. ``params`` carries numeric facts a policy needs
(``bitrate_bps``, ``max_payload_bytes``, ``frame_overhead_bytes``, ``clock_hz``, ``measure_s``...),
each documented by the ``source`` entry of ``params``.
"""


from iotbpf.ebpf import boundedjson
from iotbpf.energy.errors import ModelError  # noqa: F401 (re-exported: iotbpf.energy.models.ModelError)

SCHEMA_VERSION = 1
KINDS = ("mcu", "cpu", "radio", "sensor", "display", "gps", "camera", "soc", "other")
_CURRENT_KEYS = (("current_a", 1.0), ("current_ma", 1e-3), ("current_ua", 1e-6))
_POWER_KEYS = (("power_w", 1.0), ("power_mw", 1e-3))
_TIME_KEYS = (("time_s", 1000000000), ("time_ms", 1000000), ("time_us", 1000), ("time_ns", 1))
_ENERGY_KEYS = (("energy_j", 1.0), ("energy_uj", 1e-6))


def _num(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelError("%s: expected a number, got %r" % (where, value))
    if value != value or value - value != 0:
        raise ModelError("%s: expected a finite number, got %r" % (where, value))
    if value < 0:
        raise ModelError("%s: must not be negative (got %r)" % (where, value))
    return value


def _source(entry, sources, where):
    src = entry.get("source")
    if not isinstance(src, str) or not src.strip():
        raise ModelError("%s: every number needs a 'source' (datasheet/paper, table or page)" % where)
    if src in sources:
        return sources[src]
    if len(src) < 12:
        raise ModelError("%s: source %r is neither a key of 'sources' nor a citation" % (where, src))
    return src


def current_from_entry(entry, voltage_v, where):
    """The current (A) that ``entry`` states directly or as a power at ``voltage_v``."""
    found = None
    for key, scale in _CURRENT_KEYS:
        if key in entry:
            if found is not None:
                raise ModelError("%s: give one of current/power, not several" % where)
            found = _num(entry[key], where + "." + key) * scale
    for key, scale in _POWER_KEYS:
        if key in entry:
            if found is not None:
                raise ModelError("%s: give one of current/power, not several" % where)
            found = _num(entry[key], where + "." + key) * scale / voltage_v
    if found is None:
        raise ModelError("%s: needs current_a/current_ma/current_ua or power_w/power_mw" % where)
    return float(found)


class State:
    """One power state: its current (A) at the model voltage and where that number came from."""

    def __init__(self, name, current_a, source):
        self.name = name
        self.current_a = current_a
        self.source = source


class Transition:
    """A state change with a duration (integer ns) and the current drawn meanwhile."""

    def __init__(self, src, dst, time_ns, current_a, source):
        self.src = src
        self.dst = dst
        self.time_ns = time_ns
        self.current_a = current_a
        self.source = source
        self.key = src + ">" + dst


class ComponentModel:
    """A validated component model: states, transitions, params; currents in A at ``voltage_v``."""

    def __init__(self, name, kind, voltage_v, states, default_state, transitions, params, description=""):
        self.name = name
        self.kind = kind
        self.voltage_v = voltage_v
        self.states = states
        self.default_state = default_state
        self.transitions = transitions
        self.params = params
        self.description = description

    def current_a(self, state):
        """Current (A) drawn in ``state``; a transition key ``a>b`` is accepted too."""
        st = self.states.get(state)
        if st is not None:
            return st.current_a
        tr = self.transitions.get(state)
        if tr is not None:
            return tr.current_a
        raise ModelError("component %s has no state %r (states: %s)" % (self.name, state,
                                                                        ", ".join(sorted(self.states))))

    def power_w(self, state):
        return self.current_a(state) * self.voltage_v

    def energy_j(self, state, ns):
        """Joules of ``ns`` nanoseconds in ``state``: ``ns * current * voltage * 1e-9``, in that order,
        so every sum of it (attribution, reports) agrees with the others to the last bit."""
        return ns * self.current_a(state) * self.voltage_v * 1e-9

    def transition(self, src, dst):
        """The Transition from ``src`` to ``dst``, or None when the datasheet gives none (free)."""
        return self.transitions.get(src + ">" + dst)

    def param(self, name, default=None):
        value = self.params.get(name, default)
        if value is None:
            raise ModelError("component %s: missing parameter %r" % (self.name, name))
        return value

    def tx_levels(self):
        """The radio's TX power settings from its datasheet table (``params.tx_power_ma``: [[dBm, mA],
        ...]), as sorted (dBm, A) pairs; empty when the datasheet gives no table."""
        table = self.params.get("tx_power_ma")
        if not isinstance(table, list):
            return []
        out = []
        for pair in table:
            out.append((float(pair[0]), float(pair[1]) * 1e-3))
        out.sort()
        return out

    def tx_current_a(self, dbm=None):
        """TX current (A) at the lowest tabulated setting giving at least ``dbm`` (a radio is set to
        one of its levels, never between them); the ``tx`` state's current when ``dbm`` is None or
        the datasheet has no table. Above the highest level: ModelError."""
        levels = self.tx_levels()
        if dbm is None or not levels:
            return self.current_a("tx")
        for level, amps in levels:
            if level >= dbm:
                return amps
        raise ModelError("component %s: no TX power setting reaches %r dBm (max %r dBm)"
                         % (self.name, dbm, levels[-1][0]))

    def frequencies(self):
        """Sorted (hz, state_name) pairs of the DVFS operating points, empty if the CPU has none."""
        out = []
        for name in self.states:
            if name.startswith("run@"):
                out.append((int(self.params["freq_hz:" + name]), name))
        out.sort()
        return out

    def __repr__(self):
        return "ComponentModel(%s, %d states)" % (self.name, len(self.states))


def parse_model(data, where="model"):
    """Validate a decoded model dict and build a ComponentModel (raises ModelError naming the field)."""
    if not isinstance(data, dict):
        raise ModelError("%s: expected a JSON object" % where)
    version = data.get("version")
    if version != SCHEMA_VERSION:
        raise ModelError("%s: unsupported version %r (this iotbpf reads version %d)" % (where, version,
                                                                                        SCHEMA_VERSION))
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ModelError("%s: missing 'name'" % where)
    where = "%s (%s)" % (where, name)
    kind = data.get("kind")
    if kind not in KINDS:
        raise ModelError("%s: kind must be one of %s, got %r" % (where, ", ".join(KINDS), kind))
    voltage = _num(data.get("voltage_v"), where + ".voltage_v")
    if voltage <= 0:
        raise ModelError("%s.voltage_v: must be positive" % where)
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        raise ModelError("%s.sources: expected an object" % where)
    raw_states = data.get("states")
    if not isinstance(raw_states, dict) or not raw_states:
        raise ModelError("%s: needs a non-empty 'states' object" % where)
    states = {}
    for sname, entry in raw_states.items():
        w = "%s.states.%s" % (where, sname)
        if not isinstance(entry, dict):
            raise ModelError(w + ": expected an object")
        if ">" in sname or "@" in sname:
            raise ModelError(w + ": state names must not contain '>' or '@'")
        states[sname] = State(sname, current_from_entry(entry, voltage, w), _source(entry, sources, w))
    params = {}
    raw_params = data.get("params", {})
    if not isinstance(raw_params, dict):
        raise ModelError(where + ".params: expected an object")
    if raw_params:
        _source(raw_params, sources, where + ".params")
    for key, value in raw_params.items():
        if key == "source":
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            params[key] = _num(value, "%s.params.%s" % (where, key))
        elif isinstance(value, (str, list, dict)):
            params[key] = value
        else:
            raise ModelError("%s.params.%s: unsupported value %r" % (where, key, value))
    table = params.get("tx_power_ma")
    if table is not None:
        if not isinstance(table, list) or not table:
            raise ModelError(where + ".params.tx_power_ma: expected a list of [dBm, mA] pairs")
        for i, pair in enumerate(table):
            w = "%s.params.tx_power_ma[%d]" % (where, i)
            if not isinstance(pair, list) or len(pair) != 2:
                raise ModelError(w + ": expected [dBm, mA]")
            if isinstance(pair[0], bool) or not isinstance(pair[0], (int, float)):
                raise ModelError(w + ": expected a number of dBm")
            _num(pair[1], w + "[1]")
        src = raw_params.get("tx_power_source")
        if not isinstance(src, str) or (src not in sources and len(src) < 12):
            raise ModelError(where + ".params.tx_power_source: cite the datasheet's TX power table")
    for i, entry in enumerate(data.get("frequencies", [])):
        w = "%s.frequencies[%d]" % (where, i)
        if not isinstance(entry, dict):
            raise ModelError(w + ": expected an object")
        hz = _num(entry.get("hz"), w + ".hz")
        sname = "run@%d" % (int(hz) // 1000000)
        if int(hz) % 1000000:
            sname = "run@%dk" % (int(hz) // 1000)
        states[sname] = State(sname, current_from_entry(entry, voltage, w), _source(entry, sources, w))
        params["freq_hz:" + sname] = int(hz)
    default_state = data.get("default_state")
    if default_state not in states:
        raise ModelError("%s.default_state: %r is not one of its states" % (where, default_state))
    transitions = {}
    raw_tr = data.get("transitions", [])
    if not isinstance(raw_tr, list):
        raise ModelError(where + ".transitions: expected a list")
    for i, entry in enumerate(raw_tr):
        w = "%s.transitions[%d]" % (where, i)
        if not isinstance(entry, dict):
            raise ModelError(w + ": expected an object")
        src, dst = entry.get("from"), entry.get("to")
        if src not in states or dst not in states:
            raise ModelError("%s: from/to must name states (got %r -> %r)" % (w, src, dst))
        time_ns = None
        for key, scale in _TIME_KEYS:
            if key in entry:
                time_ns = int(round(_num(entry[key], w + "." + key) * scale))
        if time_ns is None:
            raise ModelError(w + ": needs time_s/time_ms/time_us/time_ns")
        energy = None
        for key, scale in _ENERGY_KEYS:
            if key in entry:
                energy = _num(entry[key], w + "." + key) * scale
        if energy is not None:
            if time_ns <= 0:
                raise ModelError(w + ": an energy needs a positive time")
            current = energy / voltage / (time_ns * 1e-9)
        else:
            current = current_from_entry(entry, voltage, w)
        tr = Transition(src, dst, time_ns, current, _source(entry, sources, w))
        transitions[tr.key] = tr
    return ComponentModel(name, kind, float(voltage), states, default_state, transitions, params,
                          data.get("description", ""))


def read_text(path):
    """The UTF-8 text of a file at a plain string path; errors become ModelError naming the file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        raise ModelError("cannot read %s" % path) from None
    try:
        return data.decode("utf-8")  # MicroPython's decode takes no errors= argument
    except (UnicodeError, ValueError):
        raise ModelError("%s: not UTF-8 text" % path) from None


def read_json(path):
    """Decode a JSON file at a plain string path; errors become ModelError naming the file."""
    text = read_text(path)
    try:
        return boundedjson.loads(text)
    except ValueError as exc:
        raise ModelError("%s: invalid JSON (%s)" % (path, exc)) from None


def _dirname(path):
    path = path.replace("\\", "/")
    i = path.rfind("/")
    return path[:i] if i > 0 else ("/" if i == 0 else ".")


def _exists(path):
    try:
        with open(path):
            return True
    except OSError:
        return False


def data_dirs(kind):
    """Folders that may hold bundled ``kind`` data (installed wheel first, then a source checkout)."""
    here = _dirname(__file__)
    pkg = _dirname(here)
    return [pkg + "/_data/" + kind, _dirname(pkg) + "/" + kind]


def find_file(kind, name, suffix):
    """Path of bundled ``name`` (bare name) or ``name`` itself when it is a path."""
    if "/" in name or "\\" in name or name.endswith(suffix):
        if _exists(name.split("#")[0]):
            return name
        raise ModelError("%s not found: %s" % (kind.rstrip("s").replace("_", " "), name))
    for folder in data_dirs(kind):
        path = folder + "/" + name
        base = path.split("#")[0]
        if not base.endswith(".xml"):
            path += suffix
            base += suffix
        if _exists(base):
            return path
    raise ModelError("unknown %s %r" % (kind.rstrip("s").replace("_", " "), name))


def load_model(path):
    """Load and validate one model file: ``.json``, or ``phone.xml#cpu`` (an Android power_profile)."""
    if ".xml" in path:
        from iotbpf.energy import android_profile
        component = "cpu"
        if "#" in path:
            path, component = path.split("#", 1)
        text = read_text(path)
        name = path.replace("\\", "/").split("/")[-1]
        name = name[:name.index(".xml")]
        profile = android_profile.parse_power_profile(text)
        return parse_model(android_profile.phone_model(profile, name, component), path)
    return parse_model(read_json(path), path)
