"""The app manifest (``app.json``): schema declared once as data, and validation with clear errors.

A manifest names the app's object or bundle, maps hooks to program sections, declares timers,
the instruction budget, the fault policy, the preferred scheduler policy and the simulator's
device setup. Validation must never trust the file: every field is type- and range-checked.
"""


from iotbpf.ebpf import boundedjson
from iotbpf.ebpf.errors import LoadError
from iotbpf.kernel.clock import parse_duration
from iotbpf.kernel.hooks import HOOK_NAMES

MANIFEST_VERSION = 1
MAX_BUDGET = 1000000
DEFAULT_BUDGET = 10000
MAX_TIMERS = 16
MAX_WORK_BUDGET = 10 ** 10           # instructions per work period (docs/runtime.md, "Work bounds")
MIN_WORK_PERIOD_NS = 1000000         # 1 ms
MAX_WORK_PERIOD_NS = 3600 * 10 ** 9  # 1 h

# key, JSON type, required, default, doc
SCHEMA = (
    ("version", "int", True, None, "manifest format version (1)"),
    ("name", "str", True, None, "app name: letters, digits, '_' and '-'"),
    ("description", "str", False, "", "one line saying what the app does"),
    ("object", "str", False, None, "compiled BPF object, relative to the manifest (clang -target bpf)"),
    ("bundle", "str", False, None, "portable .ibpf bundle, relative to the manifest (iotbpf pack)"),
    ("source", "str", False, None, "C source that `iotbpf build` compiles into `object`"),
    ("programs", "object", True, None, "hook name -> ELF section name (or a list of sections)"),
    ("timers", "array", False, [], "timers armed at boot: {id, period, start?, jitter?}"),
    ("budget", "int", False, DEFAULT_BUDGET, "instruction budget of one program run"),
    ("faults", "object", False, {}, "{max, window}: detach a program after max faults within window"),
    ("work", "object", False, {}, "{budget, period}: instructions the app may run per period (default 2000000/1s)"),
    ("policy", "str", False, None, "preferred scheduler policy (iotbpf.kernel.scheduler.POLICIES)"),
    ("board", "str", False, None, "default board to simulate on (a bundled board name or a path)"),
    ("sim", "object", False, {}, "simulated devices (sensors, gpio, radio, usage); see platforms/sim"),
    ("remote", "array", False, None, "maps an operator may change remotely (default: every writable map)"),
)
_TYPES = {"int": int, "str": str, "object": dict, "array": list}


class Manifest:
    """A validated app manifest. Durations are integer nanoseconds."""

    def __init__(self, data, base_dir=""):
        self.base_dir = base_dir
        _check(isinstance(data, dict), "", "must be a JSON object")
        known = [row[0] for row in SCHEMA]
        for key in data:
            _check(key in known, key, "unknown field (known: %s)" % ", ".join(known))
        for key, kind, required, default, _doc in SCHEMA:
            if key not in data:
                _check(not required, key, "missing required field")
                value = default
            else:
                value = data[key]
                ok = isinstance(value, _TYPES[kind]) and not (kind == "int" and isinstance(value, bool))
                _check(ok, key, "must be a JSON %s" % ("integer" if kind == "int" else kind))
            setattr(self, key, value)
        _check(self.version == MANIFEST_VERSION, "version",
               "unsupported manifest version %r (this iotbpf reads %d)" % (self.version, MANIFEST_VERSION))
        _check(len(self.name) > 0 and len(self.name) <= 64 and _is_ident(self.name), "name",
               "must be 1-64 letters, digits, '_' or '-'")
        _check(self.object is not None or self.bundle is not None, "object",
               "one of 'object' or 'bundle' is required")
        _check(0 < self.budget <= MAX_BUDGET, "budget", "must be between 1 and %d" % MAX_BUDGET)
        self.hooks = []
        for hook, sections in self.programs.items():
            _check(hook in HOOK_NAMES, "programs." + hook, "unknown hook (known: %s)" % ", ".join(HOOK_NAMES))
            if isinstance(sections, str):
                sections = [sections]
            _check(isinstance(sections, list) and len(sections) > 0
                   and all(isinstance(s, str) and s for s in sections),
                   "programs." + hook, "must be a section name or a list of section names")
            for section in sections:
                self.hooks.append((hook, section))
        _check(len(self.hooks) > 0, "programs", "must attach at least one program")
        _check(len(self.timers) <= MAX_TIMERS, "timers", "at most %d timers" % MAX_TIMERS)
        self.timer_specs = [_timer(i, t) for i, t in enumerate(self.timers)]
        self.fault_max, self.fault_window_ns = _faults(self.faults)
        self.work_budget, self.work_period_ns = _work(self.work)
        if self.remote is not None:
            ok = all(isinstance(n, str) and n for n in self.remote)
            _check(ok, "remote", "must be a list of map names")

    def path(self, relative):
        """A file named in the manifest, relative to the manifest's folder."""
        if relative.startswith("/") or not self.base_dir:
            return relative
        return self.base_dir.rstrip("/") + "/" + relative


def _timer(index, spec):
    where = "timers[%d]" % index
    _check(isinstance(spec, dict), where, "must be an object {id, period, start?, jitter?}")
    for key in spec:
        _check(key in ("id", "period", "start", "jitter"), where + "." + key, "unknown field")
    tid = spec.get("id", index)
    _check(isinstance(tid, int) and 0 <= tid <= 0xFFFF, where + ".id", "must be an integer 0..65535")
    period = _duration(spec.get("period", "0s"), where + ".period")
    start = _duration(spec.get("start", spec.get("period", "0s")), where + ".start")
    jitter = _duration(spec.get("jitter", "0s"), where + ".jitter")
    _check(period == 0 or period >= 1000, where + ".period", "must be 0 (one-shot) or at least 1us")
    _check(period == 0 or jitter < period, where + ".jitter", "must be smaller than the period")
    return (tid, start, period, jitter)


def _faults(spec):
    for key in spec:
        _check(key in ("max", "window"), "faults." + key, "unknown field (known: max, window)")
    limit = spec.get("max", 3)
    _check(isinstance(limit, int) and 1 <= limit <= 1000000, "faults.max", "must be an integer >= 1")
    window = _duration(spec.get("window", "1h"), "faults.window")
    return limit, window


def _work(spec):
    """The app's work bound {budget, period} (None where not given: the board's or the node's)."""
    for key in spec:
        _check(key in ("budget", "period"), "work." + key, "unknown field (known: budget, period)")
    budget = spec.get("budget")
    _check(budget is None or (isinstance(budget, int) and not isinstance(budget, bool)
                              and 1 <= budget <= MAX_WORK_BUDGET),
           "work.budget", "must be an integer between 1 and %d" % MAX_WORK_BUDGET)
    period = spec.get("period")
    if period is not None:
        period = _duration(period, "work.period")
        _check(MIN_WORK_PERIOD_NS <= period <= MAX_WORK_PERIOD_NS, "work.period", "must be between 1ms and 1h")
    return budget, period


def _duration(value, where):
    try:
        return parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise LoadError("app.json: %s: %s" % (where, exc)) from None


def _is_ident(text):
    for ch in text:
        if not (ch.isalpha() or ch.isdigit() or ch in "_-"):
            return False
    return True


def _check(cond, where, message):
    if not cond:
        raise LoadError("app.json: %s%s" % ((where + ": ") if where else "", message))


def loads(text, base_dir=""):
    """Parse and validate manifest JSON text."""
    try:
        data = boundedjson.loads(text)
    except ValueError as exc:
        raise LoadError("app.json: not valid JSON: %s" % exc) from None
    return Manifest(data, base_dir)


def load(path):
    """Read and validate a manifest file (``.../app.json``); relative paths resolve beside it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise LoadError("cannot read manifest %s: %s" % (path, exc)) from None
    try:
        text = data.decode("utf-8")  # MicroPython's decode takes no errors= argument
    except (UnicodeError, ValueError):
        raise LoadError("manifest %s is not UTF-8 text" % path) from None
    slash = path.rfind("/")
    try:
        return loads(text, path[:slash] if slash >= 0 else "")
    except LoadError as exc:   # name the file read, not always "app.json"
        message = str(exc)
        if message.startswith("app.json: "):
            raise LoadError("%s: %s" % (path, message[len("app.json: "):])) from None
        raise
