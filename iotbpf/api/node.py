"""``Node``: apps on a board, built into a kernel Runtime and run in virtual (or real) time; its
maps, events from outside and the simulation that yields a ``SimulationResult``."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from iotbpf.api.apps import find_app, load_app_programs, merged_sim, read_events
from iotbpf.api.result import SimulationResult
from iotbpf.api.views import MapsView
from iotbpf.ebpf.errors import IotbpfError, LoadError
from iotbpf.ebpf.maps import freeze_readonly
from iotbpf.kernel.clock import parse_duration
from iotbpf.kernel.runtime import Runtime
from iotbpf.platforms.sim.platform import SimPlatform
from iotbpf.report.attach import DEFAULT_SAMPLES, Session


def duration_ns(value: str | int) -> int:
    """``"1y"``/``"30d"``/``"500ms"`` or int nanoseconds -> int nanoseconds (IotbpfError if bad)."""
    try:
        return parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise IotbpfError(str(exc)) from None


def _load_board_and_scheduler(board, policy, manifest):
    """(board, scheduler) from the energy layer; (None, None) when neither the caller nor the
    manifest names a board (the node then runs without energy accounting)."""
    board = board if board is not None else manifest.board
    if board is None:
        if policy is not None:
            raise IotbpfError("--policy needs a board (--board B, or \"board\" in app.json)")
        return None, None
    from iotbpf.energy.board import load_board
    from iotbpf.kernel.scheduler import POLICIES, make_scheduler

    board_obj = load_board(str(board)) if isinstance(board, (str, os.PathLike)) else board
    policy = policy or manifest.policy or "batching"
    if policy not in POLICIES:
        raise IotbpfError("unknown policy %r (known: %s)" % (policy, ", ".join(POLICIES)))
    return board_obj, make_scheduler(policy, board_obj)


class Node:
    """A node running eBPF apps on a board's energy model, in virtual (or real) time.

    >>> node = Node("sensor_node", board="nrf52840_dk", policy="batching", seed=1)
    >>> result = node.simulate(days=1)
    >>> 0.5 < result.energy < 1.5, result.per_app["sensor_node"] > 0   # joules in a day
    (True, True)
    >>> node.maps["stats"]["count"]
    1439

    ``app`` is a bundled app name (``sensor_node``, ``rx_filter``, ``app_monitor``), an app
    folder or an app.json; ``board``/``policy`` default to the app's; the same ``seed`` gives the
    same result, byte for byte. Main methods:

    - ``simulate(duration="1d" | days=N, samples=240)`` -> SimulationResult (a Node runs once);
    - ``maps`` -> dict-like typed views: ``node.maps["blocklist"][66] = 1`` before or after a
      run, ``node.maps["stats"]`` (a C global), ``dict(node.maps["verdicts"])``;
    - ``build()`` (load and verify without running), ``add_app(app)``, ``post(hook, fields,
      at_ns)`` (schedule an event), ``inject``/``run_realtime`` (real time), ``map(name)``
      (the raw map), ``map_update``/``map_items``/``map_delete`` (bytes), ``app_stats()``.

    With ``pin_dir`` every app map is restored from ``pin_dir/<app>/<map>.pin`` when the node is
    built (the boot context then says IOT_BOOT_RESTART) and pinned there after ``simulate()``.
    """

    def __init__(self, app: str | os.PathLike | None = None, board: Any = None, seed: int = 0,
                 policy: str | None = None, events: Any = None, node_id: int = 0, engine: str = "compiled",
                 verify: bool = True, sim: dict | None = None, prefer: str = "object", scheduler: Any = None,
                 clock: Any = None, platform: Any = None, pin_dir: str | os.PathLike | None = None):
        self.seed = int(seed)
        self.node_id = node_id
        self.manifests = []
        self._programs = []
        self.prefer = prefer
        self._events = read_events(events) if events is not None else None
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

    def add_app(self, app: str | os.PathLike) -> None:
        """Load another app (bundled name, folder or app.json) before the node starts."""
        if self.runtime is not None and self.runtime.booted:
            raise IotbpfError("add apps before the node starts")
        m, programs = load_app_programs(find_app(app), self.prefer)
        self.manifests.append(m)
        self._programs.append(programs)
        self.runtime = None

    def build(self) -> Runtime:
        """Create the runtime (board, scheduler, simulated devices, apps loaded and verified) without
        running it; ``simulate()`` calls it, fleets and benchmarks call it to time the run alone.
        Returns the kernel Runtime (the same one on later calls)."""
        if self.runtime is not None:
            return self.runtime
        if not self.manifests:
            raise IotbpfError("no app loaded")
        first = self.manifests[0]
        if self.scheduler is None:
            self.board, self.scheduler = _load_board_and_scheduler(self._board_arg, self._policy, first)
        config = self._sim_config if self._sim_config is not None else merged_sim(self.manifests)
        if self._platform_arg is not None:
            self.platform = self._platform_arg
        else:
            base = first.base_dir

            def read_file(name):
                path = name if name.startswith("/") else base + "/" + name
                with open(path) as f:
                    return f.read()

            try:
                self.platform = SimPlatform(config, self.seed, self._events, read_file)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                raise LoadError("app %s: sim: %s" % (first.name, exc)) from None
        rt = Runtime(platform=self.platform, clock=self._clock, scheduler=self.scheduler, board=self.board,
                     node_id=self.node_id, seed=self.seed, engine=self._engine, verify=self._verify,
                     pin_dir=self.pin_dir)
        for m, programs in zip(self.manifests, self._programs):
            rt.load_app(m, programs)
        for a in rt.apps:
            freeze_readonly(a.maps.values())
        self.runtime = rt
        return rt

    @property
    def maps(self) -> MapsView:
        """Every map of the node's apps and the shared well-known maps, by name (typed views)."""
        rt = self.build()
        by_name = {}
        for app in rt.apps:
            for name, m in app.maps.items():
                by_name.setdefault(name, m)
        for name, m in rt.shared_maps.items():
            by_name.setdefault(name, m)
        return MapsView(by_name)

    def simulate(self, duration: str | int | None = None, progress: Any = None, *, days: float | None = None,
                 samples: int = DEFAULT_SAMPLES) -> SimulationResult:
        """Run in virtual time from boot for ``duration`` ("1h", "30d", "1y" or ns) or ``days``
        (default one day) and return the SimulationResult.

        With an energy model, ``samples`` read-only snapshots of the scheduler's ledger and
        battery are taken over the run for ``result.plot()``/``result.report`` (0: none); they
        do not change any result. A node runs once: make a new Node to simulate again.
        """
        if days is not None:
            if duration is not None:
                raise IotbpfError("give duration or days, not both")
            if not isinstance(days, (int, float)) or days <= 0:
                raise IotbpfError("days must be a positive number, not %r" % (days,))
            duration = int(round(days * 86400)) * 1000000000
        ns = duration_ns("1d" if duration is None else duration)
        if ns <= 0:
            raise IotbpfError("the duration must be positive")
        rt = self.build()
        if rt.booted:
            raise IotbpfError("this node has already run; make a new Node to simulate again")
        session = None
        if samples and self.scheduler is not None:
            meta = {"app": ",".join(m.name for m in self.manifests), "node_id": self.node_id,
                    "seed": self.seed, "clock": "virtual", "duration_ns": ns,
                    "policy": getattr(self.scheduler, "policy", None),
                    "board": getattr(getattr(self.scheduler, "board", None), "name", None)}
            session = Session(rt, meta, ns, max(2, int(samples))).start()
        rt.boot()
        rt.start_platform(ns)
        handled = rt.run_until(ns, progress)
        rt.pin_maps()
        summary = rt.summary()
        report = None
        if session is not None:
            session.take_sample()
            handled -= session.samples_taken  # the sampling events are not the node's
            if len(session.recorder):
                report = session.recorder.report(died_ns=rt.dead_at_ns)
        return SimulationResult(summary, [m.name for m in self.manifests], ns, handled, scheduler=self.scheduler,
                                report=report)

    def open_trace(self, callback: Callable[[str, int, str, str], Any]) -> None:
        """Call ``callback(kind, t_ns, app, text)`` for each bpf_trace_printk line (kind
        "trace") and iot_log line (kind "log") as the programs make them (bcc's trace_print
        in spirit); ``t_ns`` is the node's (virtual) time."""
        self.build().trace_sink = callback

    # ------------------------------------------------------------ events from outside
    def post(self, hook: str, fields: dict, at_ns: int) -> None:
        """Schedule an event at a virtual time (before or during simulate)."""
        self.build().post(hook, fields, at_ns)

    def inject(self, hook: str, fields: dict) -> None:
        """Deliver an event from another thread while run_realtime() runs (the node then runs on
        the monotonic clock)."""
        self._realtime().inject(hook, fields)

    def run_realtime(self, duration: str | int) -> dict:
        """Run on the monotonic clock for ``duration``; returns the runtime summary."""
        rt = self._realtime()
        rt.run_realtime(duration_ns(duration))
        return rt.summary()

    def _realtime(self):
        from iotbpf.kernel.clock import MonotonicClock

        if self.runtime is None and self._clock is None:
            self._clock = MonotonicClock()
        rt = self.build()
        if getattr(rt.clock, "virtual", False):
            raise IotbpfError("this node runs in virtual time; make a new Node for real time")
        return rt

    # ------------------------------------------------------------ maps
    def map(self, name: str, app: str | None = None) -> Any:
        """The map object (iotbpf.ebpf.maps) named ``name`` of ``app`` (default: the first app that
        has one); well-known maps (iot_txq, iot_policy, iot_app_demand) are the node's shared ones."""
        rt = self.build()
        if name in rt.shared_maps:
            return rt.shared_maps[name]
        for a in rt.apps:
            if (app is None or a.name == app) and name in a.maps:
                return a.maps[name]
        known = sorted(set(n for a in rt.apps for n in a.maps) | set(rt.shared_maps))
        raise IotbpfError("no map %r%s (maps: %s)" % (name, "" if app is None else " in app " + app,
                                                      ", ".join(known)))

    def map_items(self, name: str, app: str | None = None) -> list:
        """[(key bytes, value bytes)] of a map, in the map's key order."""
        return list(self.map(name, app).items())

    def map_update(self, name: str, key: bytes, value: bytes, app: str | None = None, flags: int = 0) -> None:
        """Write one entry (as a remote command would); IotbpfError with the errno if refused."""
        rc = self.map(name, app).update(bytes(key), bytes(value), flags)
        if rc:
            raise IotbpfError("map %s: update failed (errno %d)" % (name, -rc))

    def map_delete(self, name: str, key: bytes, app: str | None = None) -> None:
        """Delete one entry of a map (no error when the key is absent)."""
        self.map(name, app).delete(bytes(key))

    def app_stats(self, app: str | None = "app_monitor") -> dict:
        """app_monitor's per-uid counters: {uid: {field: int}}, decoded with the app's layout
        (``iotbpf.report.apps.APP_STATS_FIELDS``); IotbpfError when ``app`` has no app_stats map."""
        from iotbpf.report.apps import runtime_counters

        rt = self.build()
        self.map("app_stats", app)  # an IotbpfError naming the maps there are
        if app is None:
            app = next(a.name for a in rt.apps if "app_stats" in a.maps)
        return runtime_counters(rt, app)
