"""The public Python API of iotbpf, in the spirit of bcc: build, load, run and measure in a few lines.

Exported lazily from ``iotbpf``. The CLI is built on these objects, not beside them.
"""


# ---------------------------------------------------------------- Program (written by vm)
from iotbpf.ebpf import program as _ebpf_program  # noqa: E402
from iotbpf.ebpf import vm as _ebpf_vm  # noqa: E402
from iotbpf.ebpf.errors import IotbpfError as _IotbpfError  # noqa: E402


class RunResult:
    """What one run produced: ``r0``, ``insns`` executed (budget charged), optional trace/profile."""

    def __init__(self, r0: int, insns: int, trace: list | None = None, profile: dict | None = None):
        self.r0 = r0
        self.insns = insns
        self.trace = trace
        self.profile = profile

    def __repr__(self) -> str:
        return "RunResult(r0=0x%x, insns=%d)" % (self.r0, self.insns)


class Program:
    """An eBPF program you can load, run and disassemble.

    >>> p = Program.from_asm("mov %r0, 42\\nexit")
    >>> hex(p.run())
    '0x2a'
    """

    def __init__(self, program: _ebpf_program.Program):
        self.program = program
        self.last_run: RunResult | None = None

    # ------------------------------------------------------------ loading
    @classmethod
    def from_asm(cls, text: str, name: str = "") -> "Program":
        """Assemble bpf_conformance-syntax text (labels allowed)."""
        return cls(_ebpf_program.Program.from_asm(text, name=name))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "") -> "Program":
        """Raw instruction bytes (8-byte slots, little endian)."""
        return cls(_ebpf_program.Program.from_bytes(data, name=name))

    @classmethod
    def from_data(cls, text: str, name: str = "") -> "Program":
        """A bpf_conformance ``.data`` test: its program, default ``mem`` and ``expected`` r0."""
        return cls(_ebpf_program.Program.from_data(text, name=name))

    @classmethod
    def from_file(cls, path, section: str | None = None) -> "Program":
        """``.s``, ``.bin``, ``.data``; ``.o`` (ELF) and ``.ibpf`` (bundle) when those loaders exist."""
        return cls(_ebpf_program.Program.from_file(str(path), section=section))

    # ------------------------------------------------------------ views
    @property
    def name(self) -> str:
        return self.program.name or self.program.section

    @property
    def insns(self) -> list:
        return self.program.insns

    @property
    def mem(self) -> bytes:
        """Default input memory (a conformance file's ``-- mem``; empty otherwise)."""
        return self.program.mem

    @property
    def expected(self) -> int | None:
        return self.program.expected

    def __len__(self) -> int:
        return len(self.program.insns)

    def to_bytes(self) -> bytes:
        return self.program.to_bytes()

    def disasm(self, labels: bool = True) -> str:
        """The program as assembler text (``asm(disasm(x)) == x``)."""
        return self.program.disasm(labels=labels)

    # ------------------------------------------------------------ running
    def vm(self, engine: str = "interp", helpers=None, budget: int | None = None, env=None):
        """A ready VM for repeated runs (``vm.run(mem=...)``).

        ``helpers`` defaults to the Linux helpers (ebpf/helpers.py); map specs of the program
        become live maps on first use and keep their contents across runs.
        """
        if helpers is None:
            from iotbpf.ebpf.helpers import linux_helpers

            helpers = linux_helpers()
        machine = _ebpf_vm.VM(self.program, helpers=helpers, engine=engine, budget=budget, env=env)
        from iotbpf.ebpf.maps import freeze_readonly

        freeze_readonly(self.program.maps)  # loaded: .rodata is now constant, as libbpf freezes it
        return machine

    def verify(self, helpers=None, **options) -> object:
        """Run the static verifier (ebpf/verifier.py ``verify``); raises VerifierError if rejected.

        ``helpers`` defaults to the Linux helpers, as for ``run``; other options (``hook``,
        ``mem_size``, ``budget``...) are passed through.
        """
        try:
            from iotbpf.ebpf import verifier
        except ImportError:
            raise _IotbpfError("the verifier is not available in this build") from None
        if helpers is None:
            from iotbpf.ebpf.helpers import linux_helpers

            helpers = linux_helpers()
        return verifier.verify(self.program, helpers=helpers, **options)

    def execute(self, mem: bytes | None = None, engine: str = "interp", budget: int | None = None,
                helpers=None, ctx=None, trace: bool = False, profile: bool = False, env=None) -> RunResult:
        """Run once and return a RunResult; a fault raises BPFFault (``pc N: insn: reason``)."""
        if mem is None:
            mem = self.program.mem
        machine = self.vm(engine=engine, helpers=helpers, budget=budget, env=env)
        try:
            r0 = machine.run(mem=mem, ctx=ctx, trace=trace, profile=profile)
        finally:
            ex = machine.last
            self.last_run = RunResult(0, ex.insns_executed, ex.trace, ex.profile)
        self.last_run.r0 = r0
        return self.last_run

    def run(self, mem: bytes | None = None, engine: str = "interp", budget: int | None = None,
            helpers=None, ctx=None) -> int:
        """Run once and return r0 (64-bit unsigned). ``mem`` defaults to the program's own."""
        return self.execute(mem=mem, engine=engine, budget=budget, helpers=helpers, ctx=ctx).r0


# ---------------------------------------------------------------- Node (written by kernel)
import json as _json  # noqa: E402
import os as _os  # noqa: E402
import struct as _struct  # noqa: E402
import subprocess as _subprocess  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

from iotbpf import resources as _resources  # noqa: E402
from iotbpf.ebpf.errors import LoadError as _LoadError  # noqa: E402
from iotbpf.kernel import manifest as _manifest  # noqa: E402
from iotbpf.kernel.clock import parse_duration as _parse_duration  # noqa: E402
from iotbpf.kernel.runtime import Runtime as _Runtime  # noqa: E402
from iotbpf.platforms.sim.platform import SimPlatform as _SimPlatform  # noqa: E402
from iotbpf.platforms.sim.trace import parse_events as _parse_events  # noqa: E402

RESULT_VERSION = 1

# app_monitor's per-uid counters (apps/app_monitor/app_monitor.c, struct app_stats).
APP_STATS_FIELDS = ("foreground_ns", "cpu_ns", "rx_bytes", "tx_bytes", "wakelock_ns", "energy_uj",
                    "wakeups", "sessions", "disk_read_bytes", "disk_write_bytes")
_APP_STATS_FMT = "<QQQQQQIIQQ"


def duration_ns(value) -> int:
    """``"1y"``/``"30d"``/``"500ms"`` or int nanoseconds -> int nanoseconds (IotbpfError if bad)."""
    try:
        return _parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise _IotbpfError(str(exc)) from None


def find_app(app) -> _Path:
    """The app.json of a bundled app name (``sensor_node``), an app folder or an app.json path."""
    path = _resources.resolve("apps", str(app))
    if path.is_dir():
        path = path / "app.json"
    if not path.exists():
        raise _LoadError("no app.json in %s" % path.parent)
    return path


def load_app_programs(manifest_path: _Path, prefer: str = "object") -> tuple:
    """(manifest, {section: Program}) for an app: from its object (ELF, host) or its .ibpf bundle."""
    from iotbpf.kernel import app as _kernel_app

    return _kernel_app.load(str(manifest_path), prefer)


def _load_board_and_scheduler(board, policy, manifest):
    """(board, scheduler) from the energy layer; (None, None) when neither the caller nor the
    manifest names a board (the node then runs without energy accounting)."""
    board = board if board is not None else manifest.board
    if board is None:
        if policy is not None:
            raise _IotbpfError("--policy needs a board (--board B, or \"board\" in app.json)")
        return None, None
    from iotbpf.energy.board import load_board
    from iotbpf.kernel.scheduler import POLICIES, make_scheduler

    board_obj = load_board(str(board)) if isinstance(board, (str, _os.PathLike)) else board
    policy = policy or manifest.policy or "batching"
    if policy not in POLICIES:
        raise _IotbpfError("unknown policy %r (known: %s)" % (policy, ", ".join(POLICIES)))
    return board_obj, make_scheduler(policy, board_obj)


class SimulationResult:
    """What a simulation produced: a deterministic ``summary`` dict, ``text()`` and ``to_json()``."""

    def __init__(self, summary: dict, app_names: list, duration_ns: int, events_handled: int):
        self.summary = summary
        self.apps = app_names
        self.duration_ns = duration_ns
        self.events_handled = events_handled

    @property
    def faults(self) -> int:
        """Program faults during the run (every app, every hook)."""
        return self.summary["faults"]

    def hook(self, name: str) -> dict:
        """One hook's statistics: events, runs, instructions, faults, handler_ns."""
        return self.summary["hooks"][name]

    def to_dict(self) -> dict:
        """The whole result as JSON-able data, with a format version."""
        return {"version": RESULT_VERSION, "apps": self.apps, "duration_ns": self.duration_ns,
                "events_handled": self.events_handled, "summary": self.summary}

    def to_json(self) -> str:
        """to_dict() as JSON text (sorted keys: same seed, same bytes)."""
        return _json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def text(self) -> str:
        """The human summary `iotbpf simulate` prints (same seed, same bytes)."""
        from iotbpf.kernel.clock import format_duration

        s = self.summary
        lines = ["node %d: %s, %s simulated, seed %d, %d events" % (
            s["node_id"], ", ".join(self.apps), format_duration(self.duration_ns), s["seed"],
            self.events_handled)]
        lines.append("%-14s %10s %10s %14s %8s %14s" % ("hook", "events", "runs", "instructions",
                                                          "faults", "handler time"))
        for name, h in s["hooks"].items():
            if h["events"] or h["runs"]:
                lines.append("%-14s %10d %10d %14d %8d %12.3f s" % (
                    name, h["events"], h["runs"], h["instructions"], h["faults"], h["handler_ns"] / 1e9))
        tx, rx = s["radio"]["tx"], s["radio"]["rx"]
        lines.append("packets sent %d, lost %d, rejected %d, deadline misses %d, queued now %d" % (
            tx["sent"], tx["lost"], tx["rejected"], tx["missed_deadlines"], tx["in_flight"]))
        lines.append("packets received %d, passed %d, dropped %d" % (rx["received"], rx["passed"],
                                                                    rx["dropped"]))
        lines.append("faults %d, log lines %d" % (s["faults"], s["logs"]))
        for f in s["fault_records"][:5]:
            lines.append("  fault at %.3f s: %s/%s: %s" % (f["t_ns"] / 1e9, f["app"], f["hook"],
                                                           f["message"]))
        for e in s["events"]:
            lines.append("  %s at %.3f s: %s" % (e["event"], e["t_ns"] / 1e9, ", ".join(
                "%s=%s" % (k, e[k]) for k in sorted(e) if k not in ("event", "t_ns"))))
        if s.get("battery_dead_ns") is not None:
            lines.append("battery empty after %.2f days" % (s["battery_dead_ns"] / 86400e9))
        energy = s.get("energy")
        if energy is not None and self._scheduler is not None and hasattr(self._scheduler, "summary_lines"):
            lines.extend(self._scheduler.summary_lines())
        return "\n".join(lines) + "\n"

    _scheduler = None


class Node:
    """A simulated (or real-time) node running apps on a board.

    With ``pin_dir`` every app map is restored from ``pin_dir/<app>/<map>.pin`` when the node is
    built (the boot context then says IOT_BOOT_RESTART) and pinned there after ``simulate()``.

    >>> node = Node("sensor_node", seed=1)
    >>> result = node.simulate("1d")
    >>> result.hook("timer")["runs"]
    1439
    """

    def __init__(self, app=None, board=None, seed: int = 0, policy: str | None = None, events=None,
                 node_id: int = 0, engine: str = "compiled", verify: bool = True, sim: dict | None = None,
                 prefer: str = "object", scheduler=None, clock=None, platform=None, pin_dir=None):
        self.seed = int(seed)
        self.node_id = node_id
        self.manifests = []
        self._programs = []
        self.prefer = prefer
        self._events = _read_events(events) if events is not None else None
        self._sim_config = sim
        self._board_arg = board
        self._policy = policy
        self.board = None
        self.scheduler = scheduler
        self._engine = engine
        self._verify = verify
        self._clock = clock
        self._platform_arg = platform
        self.runtime = None
        self.platform = None
        self.pin_dir = None if pin_dir is None else str(pin_dir)
        if app is not None:
            self.add_app(app)

    def add_app(self, app) -> None:
        """Load another app (bundled name, folder or app.json) before the node starts."""
        if self.runtime is not None and self.runtime.booted:
            raise _IotbpfError("add apps before the node starts")
        m, programs = load_app_programs(find_app(app), self.prefer)
        self.manifests.append(m)
        self._programs.append(programs)
        self.runtime = None

    def build(self):
        """Create the runtime (board, scheduler, simulated devices, apps loaded and verified) without
        running it; ``simulate()`` calls it. Returns the kernel Runtime."""
        return self._build()

    def _build(self):
        if self.runtime is not None:
            return self.runtime
        if not self.manifests:
            raise _IotbpfError("no app loaded")
        first = self.manifests[0]
        if self.scheduler is None:
            self.board, self.scheduler = _load_board_and_scheduler(self._board_arg, self._policy, first)
        config = self._sim_config if self._sim_config is not None else _merged_sim(self.manifests)
        if self._platform_arg is not None:
            self.platform = self._platform_arg
        else:
            base = first.base_dir

            def read_file(name):
                path = name if name.startswith("/") else base + "/" + name
                with open(path) as f:
                    return f.read()

            try:
                self.platform = _SimPlatform(config, self.seed, self._events, read_file)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                raise _LoadError("app %s: sim: %s" % (first.name, exc)) from None
        rt = _Runtime(platform=self.platform, clock=self._clock, scheduler=self.scheduler, board=self.board,
                      node_id=self.node_id, seed=self.seed, engine=self._engine, verify=self._verify,
                      pin_dir=self.pin_dir)
        for m, programs in zip(self.manifests, self._programs):
            rt.load_app(m, programs)
        from iotbpf.ebpf.maps import freeze_readonly

        for a in rt.apps:
            freeze_readonly(a.maps.values())
        self.runtime = rt
        return rt

    def simulate(self, duration="1d", progress=None) -> SimulationResult:
        """Run in virtual time for ``duration`` from boot; returns the SimulationResult."""
        ns = duration_ns(duration)
        rt = self._build()
        if rt.booted:
            raise _IotbpfError("this node has already run; make a new Node to simulate again")
        rt.boot()
        rt.start_platform(ns)
        handled = rt.run_until(ns, progress)
        rt.pin_maps()
        result = SimulationResult(rt.summary(), [m.name for m in self.manifests], ns, handled)
        result._scheduler = self.scheduler
        return result

    def open_trace(self, callback) -> None:
        """Call ``callback(kind, t_ns, app, text)`` for each bpf_trace_printk line (kind
        "trace") and iot_log line (kind "log") as the programs make them (bcc's trace_print
        in spirit); ``t_ns`` is the node's (virtual) time."""
        self._build().trace_sink = callback

    # ------------------------------------------------------------ events from outside
    def post(self, hook: str, fields: dict, at_ns: int) -> None:
        """Schedule an event at a virtual time (before or during simulate)."""
        self._build().post(hook, fields, at_ns)

    def inject(self, hook: str, fields: dict) -> None:
        """Deliver an event from another thread while run_realtime() runs (the node then runs on
        the monotonic clock)."""
        self._realtime().inject(hook, fields)

    def run_realtime(self, duration) -> dict:
        """Run on the monotonic clock for ``duration``; returns the runtime summary."""
        rt = self._realtime()
        rt.run_realtime(duration_ns(duration))
        return rt.summary()

    def _realtime(self):
        from iotbpf.kernel.clock import MonotonicClock

        if self.runtime is None and self._clock is None:
            self._clock = MonotonicClock()
        rt = self._build()
        if getattr(rt.clock, "virtual", False):
            raise _IotbpfError("this node runs in virtual time; make a new Node for real time")
        return rt

    # ------------------------------------------------------------ maps
    def map(self, name: str, app: str | None = None):
        """The map object (iotbpf.ebpf.maps) named ``name`` of ``app`` (default: the first app that
        has one); well-known maps (iot_txq, iot_policy, iot_app_demand) are the node's shared ones."""
        rt = self._build()
        if name in rt.shared_maps:
            return rt.shared_maps[name]
        for a in rt.apps:
            if (app is None or a.name == app) and name in a.maps:
                return a.maps[name]
        known = sorted(set(n for a in rt.apps for n in a.maps) | set(rt.shared_maps))
        raise _IotbpfError("no map %r%s (maps: %s)" % (name, "" if app is None else " in app " + app,
                                                       ", ".join(known)))

    def map_items(self, name: str, app: str | None = None) -> list:
        """[(key bytes, value bytes)] of a map, in the map's key order."""
        return list(self.map(name, app).items())

    def map_update(self, name: str, key: bytes, value: bytes, app: str | None = None, flags: int = 0) -> None:
        """Write one entry (as a remote command would); IotbpfError with the errno if refused."""
        rc = self.map(name, app).update(bytes(key), bytes(value), flags)
        if rc:
            raise _IotbpfError("map %s: update failed (errno %d)" % (name, -rc))

    def map_delete(self, name: str, key: bytes, app: str | None = None) -> None:
        """Delete one entry of a map (no error when the key is absent)."""
        self.map(name, app).delete(bytes(key))

    def app_stats(self, app: str = "app_monitor") -> dict:
        """app_monitor's per-uid counters: {uid: {field: int}} (fields APP_STATS_FIELDS)."""
        out = {}
        for key, value in self.map_items("app_stats", app):
            uid = _struct.unpack("<I", key)[0]
            out[uid] = dict(zip(APP_STATS_FIELDS, _struct.unpack(_APP_STATS_FMT, value)))
        return out


def _merged_sim(manifests) -> dict | None:
    """One node's simulated devices: every app's ``sim`` section together (sensors and GPIO
    pins by id, radio traffic appended, link and usage settings from the first app that has
    them), so an added app keeps its devices. A device two apps define differently is an error;
    an app's trace files stay relative to its own folder."""
    sims = [(m, m.sim) for m in manifests if m.sim]
    if len(sims) <= 1:
        return sims[0][1] if sims else (manifests[0].sim if manifests else None)
    out: dict = {}
    owners: dict = {}
    for m, sim in sims:
        if not isinstance(sim, dict):
            return manifests[0].sim  # SimPlatform reports the malformed section
        for kind, ident in (("sensors", "id"), ("gpio", "pin")):
            for entry in sim.get(kind, ()):
                if isinstance(entry, dict) and "file" in entry and not str(entry["file"]).startswith("/"):
                    entry = dict(entry, file=m.path(entry["file"]))
                key = (kind, entry.get(ident, 0) if isinstance(entry, dict) else None)
                if key in owners:
                    if owners[key][1] != entry:
                        raise _LoadError("apps %s and %s both define sim %s %s %r, differently"
                                         % (owners[key][0], m.name, kind, ident, key[1]))
                    continue
                owners[key] = (m.name, entry)
                out.setdefault(kind, []).append(entry)
        for output in sim.get("outputs", ()):
            if output not in out.setdefault("outputs", []):
                out["outputs"].append(output)
        radio = sim.get("radio")
        if isinstance(radio, dict):
            merged = out.setdefault("radio", {})
            for key, value in radio.items():
                if key == "traffic":
                    merged.setdefault("traffic", []).extend(value)
                else:
                    merged.setdefault(key, value)
        if "usage" in sim and "usage" not in out:
            out["usage"] = sim["usage"]
        for key, value in sim.items():
            if key not in ("sensors", "gpio", "outputs", "radio", "usage"):
                out.setdefault(key, value)
    return out


def _read_events(events):
    if isinstance(events, (list, tuple)):
        return list(events)
    path = str(events)
    try:
        text = _Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _LoadError("cannot read events file %s: %s" % (path, exc.strerror)) from None
    except UnicodeDecodeError:
        raise _LoadError("events file %s is not UTF-8 text" % path) from None
    try:
        return _parse_events(text, path)
    except ValueError as exc:
        raise _LoadError(str(exc)) from None


def build_app(app, output=None, clang: str | None = None, cpu: str = "v3") -> _Path:
    """Compile an app's C source to its object with clang (-O2 -g -target bpf), and its .ibpf
    bundle when the manifest names one (not with an explicit ``output``); returns the object's path."""
    from iotbpf.api_extras import find_clang  # one discovery for build and Program.from_c: clang-19 first

    manifest_path = find_app(app)
    m = _manifest.load(str(manifest_path))
    source = m.path(m.source) if m.source else str(manifest_path.parent / (m.name + ".c"))
    if not _os.path.exists(source):
        raise _LoadError("app %s: source %s not found" % (m.name, source))
    out = _Path(output) if output else _Path(m.path(m.object or (m.name + ".o")))
    compiler = clang or find_clang()
    if compiler is None:
        raise _IotbpfError("clang-19 not found (nor a clang 17 or newer): install clang-19, or pass --clang PATH")
    include = _resources.data_root("apps") / "include"
    from iotbpf.api_extras import path_map_flags

    cmd = [compiler, "-O2", "-g", "-target", "bpf", "-mcpu=" + cpu, *path_map_flags(source, [include]),
           "-I", str(include), "-c", source, "-o", str(out)]
    proc = _subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["clang failed"])[0]
        from iotbpf.ebpf.errors import RuntimeFailure

        raise RuntimeFailure("clang failed for %s: %s" % (source, first))
    if m.bundle and not output:
        from iotbpf.ebpf.bundle import save_bundle
        from iotbpf.ebpf.elf import load_elf_object

        save_bundle(load_elf_object(str(out)), m.path(m.bundle))
    return out


# ---------------------------------------------------------------- extensions (written by api)
# Program.from_c and .maps, Node.maps and simulate(days=...), SimulationResult.energy/.plot(),
# compare(): subclasses in iotbpf/api_extras.py. Rebinding the names here makes them the public
# classes and the ones used inside this module (Node.simulate builds a SimulationResult).
from iotbpf.api_extras import (  # noqa: E402, F811
    Comparison,
    GlobalVariable,
    MapsView,
    MapView,
    Node,
    Program,
    SimulationResult,
    compare,
)

__all__ = ["Program", "RunResult", "Node", "SimulationResult", "compare", "Comparison", "MapView",
           "MapsView", "GlobalVariable", "APP_STATS_FIELDS", "duration_ns", "find_app", "build_app"]
