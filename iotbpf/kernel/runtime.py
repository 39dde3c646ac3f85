"""The node runtime: owns virtual time and the event loop, loads apps, runs their programs on hooks
with an instruction budget, isolates faults, keeps per-hook statistics, and drives the scheduler.

It must never let a program's fault stop the node: a faulting run is stopped, recorded as
(hook, pc, reason) and, after ``fault_max`` faults within ``fault_window`` ns, the program is
detached (an event in ``runtime.events`` says so). The OS only provides mechanism; behaviour is
in the programs. MicroPython-compatible.

Platform interface (what ``platform`` provides; iotbpf/platforms/sim/platform.py is one)
    ``sensor_read(sensor_id, now_ns) -> int or None``, ``gpio_read(pin) -> int or None``,
    ``gpio_write(pin, level) -> bool``, ``airtime_ns(nbytes) -> int``, ``delivered() -> bool``
    (link loss), ``jitter_ns(max_ns) -> int``, ``transmit(app_name, payload, now_ns) -> bool``
    (a real node sends the packet's bytes when the scheduler completes it; False = lost),
    ``log_line(now_ns, app_name, msg, value)`` (each iot_log line) and ``start(runtime, end_ns)``, which schedules
    its event streams with ``runtime.queue.push(t, fn, arg)`` and delivers each event with
    ``runtime.raise_event(hook, fields)``. Every method is optional except ``start``.

Energy contract (kernel/scheduler.py, owned by the energy engineer)
    ``make_scheduler(policy_name, board, params=None) -> Scheduler`` with:
      ``boot(now_ns)``; ``cpu_busy(now_ns, busy_ns, app)`` after every program run, busy_ns =
      ``board.insn_ns(insns)`` (or insns x ``board.ns_per_insn``); ``sensor_read(now_ns, sensor,
      app)``; ``enqueue_tx(now_ns, nbytes, deadline_ns, app)``; ``request_listen(now_ns,
      duration_ns, app)``; ``next_wakeup_ns() -> int or None`` (the runtime schedules an event
      then); ``on_wakeup(now_ns) -> [(done_ns, nbytes, app, ok)]`` finished transmissions (the
      runtime raises radio_tx_done for the sending app; optional ``take_done()`` hands over every
      timed transmission at once, each then becomes an event at its time); ``advance(now_ns)`` integrate energy up
      to now; ``energy_used_j()``; ``soc()`` in 0..1; ``battery_dead() -> bool`` (the run ends);
      ``summary() -> dict``. Optional: ``set_param_reader(fn)`` (fn() -> the iot_policy map as a
      tuple of u64; the same tuple while the map is unchanged). ``app`` is the app's name.
      Without a scheduler the runtime still runs: a packet is sent at once (FIFO, airtime from
      the platform) and energy reads as 0.

Public API: ``Runtime(platform=None, clock=None, scheduler=None, board=None, node_id=0, seed=0,
engine="compiled", verify=True, battery_report_ns=3600 s, map_budget_bytes=256 KiB,
pin_dir=None)``; ``load_app(manifest, programs, maps=None) -> App``; ``boot()``;
``start_platform(end_ns)``; ``run_until(t_ns, progress=None) -> events handled``; ``run_for(ns)``;
``raise_event(hook, fields, app=None) -> [r0]``; ``post(hook, fields, at_ns)``; ``inject(hook,
fields)`` (thread-safe) + ``run_realtime(duration_ns)``; ``replace_program(app, section, program)``,
``verify_program(...)``; ``pin_maps()``; ``policy(name, default)``; ``summary() -> dict``;
``hook_stats``, ``faults`` (records: t_ns, app, hook, section, pc, kind, reason, message),
``events`` (detached / replaced / battery_dead), ``logs`` ((t_ns, app, text, value)),
``shared_maps`` (the well-known maps by name).
"""

import struct
from heapq import heappop as _heappop
from heapq import heappush as _heappush

from iotbpf.ebpf.errors import LoadError, VerifierError
from iotbpf.ebpf.vm import UNLIMITED as _UNLIMITED
from iotbpf.ebpf.vm import VM, BPFFault
from iotbpf.energy.accounting import LedgerProfile
from iotbpf.kernel import helpers as iot_helpers
from iotbpf.kernel import wellknown
from iotbpf.kernel.clock import NS_PER_H, NS_PER_S, VirtualClock
from iotbpf.kernel.events import EventQueue
from iotbpf.kernel.hooks import HOOK_NAMES, HOOKS
from iotbpf.kernel.prng import Rng

_pack_txq = wellknown.TXQ_STATE.packer()  # iot_txq's one entry
_TXQ_SIZE = wellknown.TXQ_STATE.size
_SENSOR_ERROR = iot_helpers.SENSOR_ERROR
MAX_SENSOR_CACHE = 64  # sensor readers kept per app (a board has a handful); unknown ids keep none
_MASK64 = iot_helpers.MASK64

_pack_timer = HOOKS["timer"].packer()  # the timer context, fields in declared order
_POLICY_INDEX = {}

DEFAULT_NS_PER_INSN = 125  # a 64 MHz Cortex-M4 interpreting eBPF at ~8 cycles per instruction
BATTERY_REPORT_NS = NS_PER_H
TX_QUEUE_LIMIT_BYTES = 4096
LOW_PERMILLE = 200
CRITICAL_PERMILLE = 50
MAX_LOG = 1000
MAX_FAULT_RECORDS = 1000
RUN_MEMO_MAX = 4096  # distinct instruction counts remembered per program (Attached.run_memo)
MAX_APPS = 16
MAP_BUDGET_BYTES = 256 * 1024  # per app, unless the board or the caller says otherwise
# The work bound (docs/runtime.md, "Work bounds"): each app may run WORK_BUDGET instructions per
# WORK_PERIOD_NS of (virtual or real) time, each run charged RUN_COST more for the OS's part of
# an event; the manifest's ``work`` and the board's ``work_budget_insns``/``work_period_ns`` set
# them (the board's budget is also a ceiling). An app out of credit is throttled until a period
# has passed since its credit was last refilled: its events are dropped and counted.
WORK_BUDGET = 2000000   # a quarter of a 64 MHz Cortex-M4's second at DEFAULT_NS_PER_INSN
WORK_PERIOD_NS = NS_PER_S
RUN_COST = 50   # 16 timers at the 1 ms minimum running a trivial program stay within WORK_BUDGET


class AppEnv:
    """``ex.env`` for one app's programs: the node, the app, the clock, a PRNG, trace output."""

    def __init__(self, node, app):
        self.node = node
        self.app = app
        self.trace_output = []
        self._rng = Rng(node.seed, "app:" + app.name)
        self.sensor_helper = _sensor_helper(self, node, app)

    def clock_ns(self):
        return self.node.clock.now_ns()

    def random_u32(self):
        return self._rng.u32()

    def on_trace(self, text):
        """A bpf_trace_printk line: to the node's trace sink, if one listens."""
        sink = self.node.trace_sink
        if sink is not None:
            sink("trace", self.node.clock.now_ns(), self.app.name, text)


def _sensor_helper(env, node, app):
    """iot_sensor_read for one app, ``fn(ex, sensor_id, r2, r3, r4, r5) -> u64``: what
    ``Runtime.sensor_read`` does, with the lookups done once (one sensor read per event of a
    node-year); the compiled engine calls it directly (HelperSpec.bind). It rebinds itself if
    the node's platform, scheduler or clock object is replaced."""
    platform = node.platform
    sched = node.scheduler
    counted = sched.sensor_read if sched is not None else None
    counter = getattr(sched, "sensor_counter", None)
    name = app.name
    sensors = {}  # sensor id -> [reader, the scheduler's read counter (made at the first good read)]
    clock = node.clock
    virtual = type(clock) is VirtualClock  # its now_ns() is its ``now``

    def sensor_helper(ex, sensor_id, r2, r3, r4, r5):
        if node.platform is not platform or node.scheduler is not sched or node.clock is not clock:
            env.sensor_helper = _sensor_helper(env, node, app)
            return env.sensor_helper(ex, sensor_id, r2, r3, r4, r5)
        sensor_id &= 0xFFFFFFFF
        sensor = sensors.get(sensor_id)
        if sensor is None:
            if platform is None:
                return _SENSOR_ERROR
            sensor = [_platform_reader(platform, sensor_id), None]
            value = sensor[0](clock.now if virtual else clock.now_ns())
            if value is None:
                return _SENSOR_ERROR  # not one of the board's sensors: nothing is kept for it
            if len(sensors) < MAX_SENSOR_CACHE:
                sensors[sensor_id] = sensor
        else:
            value = sensor[0](clock.now if virtual else clock.now_ns())
            if value is None:
                return _SENSOR_ERROR
        cell = sensor[1]
        if cell is not None:
            cell[0] += 1  # what counted(now, sensor_id, name) would count
        elif counter is not None:
            cell = sensor[1] = counter(sensor_id, name)
            cell[0] += 1
        elif counted is not None:
            counted(clock.now_ns(), sensor_id, name)
        return value & _MASK64
    return sensor_helper


def _platform_reader(platform, sensor_id):
    """``fn(now_ns)`` reading one sensor of the platform (its ``sensor_reader`` if it has one)."""
    make = getattr(platform, "sensor_reader", None)
    if make is not None:
        return make(sensor_id)
    return lambda now_ns: platform.sensor_read(sensor_id, now_ns)


class _FoldedRuns:
    """``runs``, ``insns`` and ``handler_ns`` read after ``fold()`` has brought in the runs
    counted in run_memo cells (Attached, HookStats)."""

    @property
    def runs(self):
        self.fold()
        return self._runs

    @property
    def insns(self):
        self.fold()
        return self._insns

    @property
    def handler_ns(self):
        self.fold()
        return self._handler_ns


class Attached(_FoldedRuns):
    """One program attached to a hook, with its VM, its context buffer and its statistics.

    A run is counted once, in its ``run_memo`` cell; ``runs``, ``insns`` and ``handler_ns``
    here and in the hook's HookStats fold those counts in when read."""

    def __init__(self, app, hook, section, program, vm, stats):
        self.app = app
        self.hook = hook
        self.section = section
        self.program = program
        self.vm = vm
        self.stats = stats
        self.ctx = bytearray(hook.size)
        self.ctx_addr = vm.memory.add_region(self.ctx, "ctx", True)
        self._runs = 0
        self._insns = 0
        self.faults = 0
        self._handler_ns = 0
        self.recent_faults = []
        self.detached = False
        # instruction count -> [CPU ns, the scheduler's counter for that burst or None, runs not
        # yet folded into the statistics], see _account; valid while run_memo_for is the
        # node's scheduler
        self.run_memo = {}
        self.run_memo_for = None
        stats._atts.append(self)

    def fold(self):
        """Move the runs counted in run_memo into this program's and its hook's statistics."""
        stats = self.stats
        for insns, cell in self.run_memo.items():
            n = cell[2]
            if n:
                cell[2] = 0
                busy = cell[0] * n
                self._runs += n
                self._insns += insns * n
                self._handler_ns += busy
                stats._runs += n
                stats._insns += insns * n
                stats._handler_ns += busy


class App:
    """A loaded app: manifest, maps by name, attached programs, timers."""

    def __init__(self, node, app_id, manifest, maps):
        self.node = node
        self.id = app_id
        self.manifest = manifest
        self.name = manifest.name
        self.maps = maps
        self.attached = []
        self.timers = {}  # timer id -> [generation, period_ns, expirations, jitter_ns]
        self.budget = manifest.budget
        self.work_budget, self.work_period_ns = _work_bounds(manifest, node.board)
        self.work_left = self.work_budget  # credit until the next refill (Runtime._throttled)
        self.work_since = node.clock.now_ns()  # when the credit was last refilled
        self.throttled = 0  # events and timer expirations dropped while out of credit
        self.env = AppEnv(node, self)
        self.tx_packets = 0
        self.tx_bytes = 0


def _work_bounds(manifest, board):
    """(instructions per period, period ns) for an app: its manifest's, else its board's, else
    WORK_BUDGET per WORK_PERIOD_NS; a board's budget is a ceiling for the manifest's too."""
    ceiling = getattr(board, "work_budget_insns", None) if board is not None else None
    if not (isinstance(ceiling, int) and ceiling > 0):
        ceiling = None
    budget = getattr(manifest, "work_budget", None) or ceiling or WORK_BUDGET
    if ceiling is not None and budget > ceiling:
        budget = ceiling
    period = getattr(manifest, "work_period_ns", None) or \
        (getattr(board, "work_period_ns", None) if board is not None else None)
    return budget, period if isinstance(period, int) and period > 0 else WORK_PERIOD_NS


class HookStats(_FoldedRuns):
    """Per-hook counters: events raised, program runs, instructions, faults, handler time (ns).
    Runs, instructions and handler time include the runs its programs have not folded in yet."""

    def __init__(self):
        self.events = 0
        self._runs = 0
        self._insns = 0
        self.faults = 0
        self.throttled = 0  # program runs not done because their app was out of work credit
        self._handler_ns = 0
        self._atts = []  # the programs attached to this hook now or detached from it

    def fold(self):
        """Bring in the runs its programs have counted and not folded yet."""
        for att in self._atts:
            att.fold()

    def as_dict(self):
        return {"events": self.events, "runs": self.runs, "instructions": self.insns,
                "faults": self.faults, "handler_ns": self.handler_ns}


class Runtime:
    """One node: apps, hooks, event queue, clock, devices (platform) and the energy scheduler."""

    def __init__(self, platform=None, clock=None, scheduler=None, board=None, node_id=0, seed=0,
                 engine="compiled", verify=True, battery_report_ns=BATTERY_REPORT_NS,
                 map_budget_bytes=MAP_BUDGET_BYTES, pin_dir=None):
        self.platform = platform
        self.clock = clock if clock is not None else VirtualClock()
        self.scheduler = scheduler
        self.board = board
        self.node_id = node_id
        self.seed = seed
        self.engine = engine
        self.verify = verify
        self.battery_report_ns = battery_report_ns
        self.map_budget_bytes = map_budget_bytes
        self.pin_dir = pin_dir
        self.boot_reason = 0
        self.queue = EventQueue()
        self.apps = []
        self.hooks = {}
        for name in HOOK_NAMES:
            self.hooks[name] = []
        self.hook_stats = {}
        for name in HOOK_NAMES:
            self.hook_stats[name] = HookStats()
        self.faults = []
        self.fault_count = 0
        self.events = []
        self.logs = []
        self.log_count = 0
        self.trace_sink = None  # fn(kind "trace"|"log", t_ns, app, text) for --trace-log
        self.inbox = []
        self.booted = False
        self.dead_at_ns = None
        self.end_ns = None
        self.tx = {"queued": 0, "queued_bytes": 0, "sent": 0, "lost": 0, "rejected": 0,
                   "missed_deadlines": 0, "in_flight": 0, "in_flight_bytes": 0}
        self.rx = {"received": 0, "passed": 0, "dropped": 0, "missed": 0}
        self._radio_free_ns = 0
        self._sched_tx = []  # with a scheduler: FIFO of (nbytes, app, deadline, queued_at)
        self._wakeup_gen = 0
        self._wakeup_at = None
        self._death_gen = 0  # the battery-death check that is still valid (see _schedule_death)
        self._death_rate = None  # the net drain (A) the pending death check was predicted at
        ns = getattr(board, "ns_per_insn", None) if board is not None else None
        self.ns_per_insn = ns if ns else DEFAULT_NS_PER_INSN
        self._insn_ns = getattr(board, "insn_ns", None) if board is not None else None
        self._busy_ns = {}  # instruction count -> CPU ns (see _busy_for)
        self._timer_stats = self.hook_stats["timer"]
        self._timer_fire_bound = self._timer_fire  # one bound method for every re-armed timer
        self._timer_atts = {}  # app id -> its timer programs in hook order (cleared on any change)
        self._direct_end = None  # run_until's end while timers may fire again without the heap
        self._direct_fired = 0  # timer events _timer_fire handled that way
        self.shared_maps = _make_well_known_maps()
        defaults = wellknown.policy_defaults()
        if battery_report_ns:
            defaults[wellknown.policy_index("battery_report_ns")] = battery_report_ns
        _array_store_all(self.shared_maps["iot_policy"], defaults)
        self._txq_state = [0, 0, 0, 0, 0, 0]
        self._policy_cache = None  # (raw bytes of iot_policy, its values) for _policy_values
        self._helpers = None

    # ---------------------------------------------------------------- loading

    def helper_table(self):
        """Linux helpers (iotbpf.ebpf.helpers) plus the IoT helpers, built once per node."""
        if self._helpers is None:
            from iotbpf.ebpf.helpers import linux_helpers

            table = linux_helpers()
            iot_helpers.register(table)
            self._helpers = table
        return self._helpers

    def load_app(self, manifest, programs, maps=None):
        """Attach an app: ``programs`` maps section name -> Program; ``maps`` name -> Map (the
        programs' own maps; well-known names are rebound to the node's shared instances).

        Every program is verified against its hook's context layout and the helper table before
        anything is attached; a rejected program raises VerifierError and nothing is loaded.
        """
        if len(self.apps) >= MAX_APPS:
            raise LoadError("too many apps on one node (at most %d)" % MAX_APPS)
        for other in self.apps:
            if other.name == manifest.name:
                raise LoadError("an app named %s is already loaded" % manifest.name)
        app = App(self, len(self.apps) + 1, manifest, dict(maps or {}))
        for name in wellknown.WELL_KNOWN_NAMES:
            if name in app.maps:
                app.maps[name] = self.shared_maps[name]
        table = self.helper_table()
        from iotbpf.ebpf.maps import MapBudget

        budget = MapBudget(self.map_budget_bytes, "app " + manifest.name)
        plan = []
        for hook_name, section in manifest.hooks:
            program = programs.get(section)
            if program is None:
                raise LoadError("app %s: no program in section %r for hook %s (sections: %s)" % (
                    manifest.name, section, hook_name, ", ".join(sorted(programs)) or "none"))
            program = _rebind_maps(program, app.maps, self.shared_maps, budget)
            hook = HOOKS[hook_name]
            if self.verify:
                self._verify(app, hook, section, program, table)
            plan.append((hook, section, program))
        self._fill_prog_arrays(app, programs, plan, budget, table)
        for hook, section, program in plan:
            vm = self._make_vm(program, table, app)
            att = Attached(app, hook, section, program, vm, self.hook_stats[hook.name])
            app.attached.append(att)
            self.hooks[hook.name].append(att)
        self.apps.append(app)
        self._timer_atts = {}
        if self.pin_dir is not None and self._restore_pinned(app):
            self.boot_reason = 1
        if self.booted:
            self._start_app(app)
        return app

    def _fill_prog_arrays(self, app, programs, plan, budget, table):
        """Bind the app's other programs to its maps and put them into the prog_array slots the
        object declares. A prog_array serves the programs of ONE hook: the hook of the attached
        programs that tail-call through it (following chains of tail calls); every program placed
        in it is verified against that hook's context, and an attached program of another hook,
        or a prog_array used from two hooks, is refused (a tail call keeps the caller's context)."""
        attached = [p for _h, _s, p in plan]
        extra = [p for p in programs.values() if p not in attached]
        app.tail_hooks = {}
        if not any(getattr(m, "get_program", None) is not None for m in app.maps.values()):
            return
        from iotbpf.ebpf.maps import fill_prog_arrays

        for program in extra:
            _rebind_maps(program, app.maps, self.shared_maps, budget)
        fill_prog_arrays(attached + extra, app.maps)
        serves = {}   # prog_array name -> (hook, the section or program whose tail calls set it)
        work = [(hook, section, program) for hook, section, program in plan]
        seen = set()
        while work:
            hook, where, program = work.pop()
            if (id(program), hook.name) in seen:
                continue
            seen.add((id(program), hook.name))
            for m in _prog_arrays_used(program):
                name = m.spec.name
                if name in serves and serves[name][0].name != hook.name:
                    raise VerifierError("app %s: prog_array %s is used for tail calls from hook %s (%s) and "
                                        "hook %s (%s); a prog_array serves the programs of one hook"
                                        % (app.name, name, serves[name][0].name, serves[name][1],
                                           hook.name, where))
                serves.setdefault(name, (hook, where))
                for target in _slot_programs(m):
                    work.append((hook, getattr(target, "name", "?"), target))
        first = plan[0][0]
        verified = {}   # id(extra program) -> hook name it was verified against
        for m in app.maps.values():
            if getattr(m, "get_program", None) is None:
                continue
            hook = serves.get(m.spec.name, (first, None))[0]   # an unused array: the first hook
            app.tail_hooks[m.spec.name] = hook.name
            for target in _slot_programs(m):
                name = getattr(target, "name", "?")
                if target in attached:
                    own = plan[attached.index(target)][0]
                    if own.name != hook.name:
                        raise VerifierError("app %s: program %s is attached to hook %s but sits in prog_array "
                                            "%s, which is tail-called from hook %s (another context)"
                                            % (app.name, name, own.name, m.spec.name, hook.name))
                    continue
                if target not in extra:
                    continue
                done = verified.get(id(target))
                if done is not None and done != hook.name:
                    raise VerifierError("app %s: program %s sits in prog_arrays tail-called from hooks %s and "
                                        "%s; a tail-call target runs with one hook's context"
                                        % (app.name, name, done, hook.name))
                if done is None and self.verify:
                    self._verify(app, hook, name, target, table)
                verified[id(target)] = hook.name

    # ---------------------------------------------------------------- pinned maps

    def _pin_path(self, app, name):
        return "%s/%s/%s.pin" % (self.pin_dir.rstrip("/"), app.name, name)

    def _restore_pinned(self, app):
        """Load the app's maps pinned by a previous run; True if any was restored (a restart)."""
        from iotbpf.ebpf.pin import restore

        restored = False
        for name, m in app.maps.items():
            if name not in self.shared_maps and restore(m, self._pin_path(app, name)):
                restored = True
        return restored

    def pin_maps(self):
        """Save every app map under pin_dir/<app>/<map>.pin (crash-safe), so a restart keeps them."""
        import os

        from iotbpf.ebpf.pin import pin_map

        if self.pin_dir is None:
            return
        for app in self.apps:
            folder = "%s/%s" % (self.pin_dir.rstrip("/"), app.name)
            for part in (self.pin_dir, folder):
                try:
                    os.mkdir(part)
                except OSError:
                    pass
            for name, m in app.maps.items():
                if name not in self.shared_maps:
                    pin_map(m, self._pin_path(app, name))

    def _find_attached(self, app_name, section):
        for app in self.apps:
            if app.name == app_name:
                for att in app.attached:
                    if att.section == section:
                        return app, att
                raise LoadError("app %s has no program in section %r" % (app_name, section))
        raise LoadError("no app named %s on this node" % app_name)

    def verify_program(self, app_name, section, program):
        """Check that ``program`` could replace ``section`` of an app (maps bound, verified for the
        section's hook); raises LoadError/VerifierError, changes nothing. Returns the bound program."""
        from iotbpf.ebpf.maps import MapBudget

        app, att = self._find_attached(app_name, section)
        maps = dict(app.maps)
        budget = MapBudget(self.map_budget_bytes, "app " + app.name)
        # The update's own globals (.rodata/.data/.bss: new constants, new or resized variables)
        # come with it, initialised from its bundle; its other maps bind to the app's by name.
        program = _rebind_maps(program, maps, self.shared_maps, budget, own_globals=True)
        for m in _prog_arrays_used(program):
            serves = getattr(app, "tail_hooks", {}).get(m.spec.name)
            if serves is not None and serves != att.hook.name and any(True for _ in _slot_programs(m)):
                raise VerifierError("prog_array %s holds programs verified for hook %s; a program of hook %s "
                                    "cannot tail-call into them" % (m.spec.name, serves, att.hook.name))
        if self.verify:
            self._verify(app, att.hook, section, program, self.helper_table())
        return program

    def replace_program(self, app_name, section, program):
        """Swap in a new program for an app's section (an over-the-air update): verified first;
        a fresh VM and counters; same position on the hook. Returns the previous Program."""
        program = self.verify_program(app_name, section, program)
        app, att = self._find_attached(app_name, section)
        for m in program.maps:
            name = m.spec.name
            if (name not in app.maps or _is_global(name)) and name not in self.shared_maps:
                app.maps[name] = m   # the running program's globals are the ones `map` commands see
        fresh = Attached(app, att.hook, section, program, self._make_vm(program, self.helper_table(), app),
                         att.stats)
        att.fold()  # its runs stay in the hook's statistics; the program's own go with it
        att.stats._atts.remove(att)
        app.attached[app.attached.index(att)] = fresh
        hook_list = self.hooks[att.hook.name]
        if att in hook_list:
            hook_list[hook_list.index(att)] = fresh
        else:
            hook_list.append(fresh)
        self._timer_atts = {}
        self.events.append({"t_ns": self.clock.now_ns(), "event": "replaced", "app": app.name,
                            "hook": att.hook.name, "section": section})
        return att.program

    def _verify(self, app, hook, section, program, table):
        try:
            from iotbpf.ebpf.verifier import verify
        except ImportError:
            return  # device builds ship without the verifier: programs are verified on the host
        try:
            result = verify(program, helpers=table, hook=hook.layout(), budget=app.budget)
        except VerifierError as exc:
            raise VerifierError("app %s, section %s (hook %s): %s" % (app.name, section, hook.name, exc)) \
                from None
        # what the verifier proved speeds the compiled engine up: accesses proven in bounds run
        # unchecked, and a program whose longest path fits the budget runs without budget checks
        # (unless it can leave its own code through a tail call, which the bound does not cover).
        program.safe_access_pcs = frozenset(result.safe_access_pcs)
        bounded = result.max_path_insns is not None and result.max_path_insns <= app.budget
        program.proven_within_budget = app.budget if bounded and not _calls_any(program, _CHAINING_HELPERS) \
            else None
        program.verified_stack = True  # no read of stack bytes before they are written in the run

    def _make_vm(self, program, table, app):
        proven = self.verify and getattr(program, "proven_within_budget", None) == app.budget
        budget = None if proven else app.budget
        try:
            vm = VM(program, helpers=table, engine=self.engine, budget=budget, env=app.env)
        except LoadError as exc:
            if self.engine != "interp" and "not available" in str(exc):
                vm = VM(program, helpers=table, engine="interp", budget=budget, env=app.env)
            else:
                raise
        # a verified program never sees what an earlier run left on its stack: no need to clear it
        vm.clear_stack = not (self.verify and getattr(program, "verified_stack", False))
        return vm

    # ---------------------------------------------------------------- running

    def boot(self):
        """Start the node: the scheduler boots, then every app's boot programs run and its
        manifest timers are armed."""
        if self.booted:
            return
        self.booted = True
        now = self.clock.now_ns()
        if self.scheduler is not None:
            self.scheduler.boot(now)
            batt = getattr(self.scheduler, "battery", None)
            if getattr(batt, "rate_dependent", False) and getattr(self.scheduler, "ledger", None) is not None:
                # the battery's rate effects see each burst's current, read from the ledger at
                # each battery update (issue 21), not the interval's average
                batt.profile_source = LedgerProfile(self.scheduler.ledger, batt.voltage_v)
            reader = getattr(self.scheduler, "set_param_reader", None)
            if reader is not None:
                reader(self._policy_values)
        for app in self.apps:
            self._start_app(app)
        if self.battery_report_ns:
            self.queue.push(now + self.battery_report_ns, self._battery_event, None)
        if self.scheduler is not None and self.scheduler.battery_dead():
            self.queue.push(now, self._battery_death, None)  # browned out at the first pulse
        self._reschedule_wakeup()

    def _start_app(self, app):
        now = self.clock.now_ns()
        fields = {"now_ns": now, "node_id": self.node_id, "reason": self.boot_reason,
                  "battery_permille": self.battery_permille(), "app_id": app.id}
        self._run_hook(self.hooks["boot"], "boot", fields, app)
        for tid, start, period, jitter in app.manifest.timer_specs:
            self.arm_timer(app, tid, start, period, jitter)

    def start_platform(self, end_ns):
        if self.platform is not None:
            self.platform.start(self, end_ns)

    def run_until(self, end_ns, progress=None):
        """Process events up to (not including) ``end_ns``; returns the number of events handled.

        ``progress(now_ns)`` is called every 4096 events (for a progress bar).
        """
        if not self.booted:
            self.boot()
        queue = self.queue
        heap = queue._heap
        clock = self.clock
        pop = queue.pop
        handled = 0
        self.end_ns = end_ns
        virtual = getattr(clock, "virtual", False)
        if virtual and progress is None:
            # the loop of a simulated node-year: EventQueue.pop inlined, the clock set directly
            # (events come out of the heap in time order: time never goes back); periodic
            # timers may fire again in _timer_fire while they stay the earliest event
            self._direct_end = end_ns
            self._direct_fired = 0
            try:
                while heap and heap[0][0] < end_ns:
                    t, _seq, fn, arg = _heappop(heap)
                    clock.now = t
                    fn(t, arg)
                    handled += 1
                    if self.dead_at_ns is not None:
                        break
            finally:
                self._direct_end = None
                handled += self._direct_fired
        else:
            while heap and heap[0][0] < end_ns:
                t, _seq, fn, arg = pop()
                if virtual:
                    clock.now = t
                else:
                    clock.sleep_until(t)
                fn(t, arg)
                handled += 1
                if self.dead_at_ns is not None:
                    break
                if progress is not None and not handled & 4095:
                    progress(t)
        if self.dead_at_ns is None and clock.now_ns() < end_ns:
            clock.sleep_until(end_ns)
        if self.scheduler is not None:
            self.scheduler.advance(clock.now_ns())
        return handled

    def run_for(self, duration_ns, progress=None):
        return self.run_until(self.clock.now_ns() + duration_ns, progress)

    def post(self, hook, fields, at_ns):
        """Schedule an event for ``hook`` at ``at_ns`` (virtual time; from the event loop's thread)."""
        _check_fields(hook, fields)
        self.queue.push(at_ns, self._posted, (hook, fields))

    def _posted(self, now, arg):
        self.raise_event(arg[0], arg[1])

    def inject(self, hook, fields):
        """Queue an event from another thread (a GPIO callback); the real-time loop delivers it."""
        _check_fields(hook, fields)
        self.inbox.append((hook, fields))

    def run_realtime(self, duration_ns, poll_ns=10000000):
        """Run on the node's (monotonic) clock for duration_ns, delivering injected events."""
        if not self.booted:
            self.boot()
        end = self.clock.now_ns() + duration_ns
        while True:
            now = self.clock.now_ns()
            while self.inbox:
                hook, fields = self.inbox.pop(0)
                self.raise_event(hook, fields)
            while self.queue._heap and self.queue._heap[0][0] <= now:
                t, _seq, fn, arg = self.queue.pop()
                fn(now, arg)
            if now >= end or self.dead_at_ns is not None:
                break
            nxt = self.queue.peek_time()
            wake = now + poll_ns
            if nxt is not None and nxt < wake:
                wake = nxt
            self.clock.sleep_until(min(wake, end))
        if self.scheduler is not None:
            self.scheduler.advance(self.clock.now_ns())

    def raise_event(self, hook, fields, app=None):
        """Deliver an event now to every program attached to ``hook`` (of ``app`` only, if given).

        ``fields`` is a dict of context values; ``now_ns`` is filled in. Returns the list of r0
        values of the programs that ran without fault.
        """
        values = dict(fields)
        values["now_ns"] = self.clock.now_ns()
        if hook == "radio_rx":
            return self._radio_rx(values)
        return self._run_hook(self.hooks[hook], hook, values, app)

    def _run_hook(self, attached, hook_name, values, only_app=None):
        """One event on a hook, its context given as {field: value} (``now_ns`` among them;
        missing fields are 0): the r0 of each program that ran without fault."""
        return self._run_each(attached, hook_name, values["now_ns"], only_app, HOOKS[hook_name].pack_into,
                              (values,))

    def _run_hook_values(self, hook_name, now, values, only_app=None):
        """_run_hook for a hook without array fields, given every field's value in declared
        order (the completion of each packet and the battery report run this: no dict)."""
        return self._run_each(self.hooks[hook_name], hook_name, now, only_app, HOOKS[hook_name].packer(),
                              (0,) + values)

    def _run_each(self, attached, hook_name, now, only_app, pack, args):
        """Count the event, then run each program of ``attached`` (``only_app``'s, if given) on
        its context packed by ``pack(ctx, *args)``; the r0s of those that did not fault."""
        stats = self.hook_stats[hook_name]
        stats.events += 1
        results = []
        for att in tuple(attached):
            app = att.app
            if only_app is not None and app is not only_app:
                continue
            if app.work_left <= 0 and self._throttled(app, now) is not None:
                app.throttled += 1
                stats.throttled += 1
                continue
            pack(att.ctx, *args)
            r0 = self._run(att, stats, now)
            if r0 is not None:
                results.append(r0)
        return results

    def _run(self, att, stats, now):
        """Run one attached program on its (already packed) context; None if it faulted."""
        vm = att.vm
        try:
            r0 = vm.run_event(att.ctx_addr)
        except BPFFault as exc:
            self._account(att, now, vm.last.insns_executed)
            self._fault(att, stats, now, exc)
            return None
        self._account(att, now, vm.last.insns_executed)
        return r0

    def _run_memo(self, att, insns):
        """The run_memo cell ``[CPU ns, scheduler counter or None, runs]`` for runs of ``insns``
        instructions of ``att`` (made on first use; at most RUN_MEMO_MAX per program)."""
        sched = self.scheduler
        if att.run_memo_for is not sched or len(att.run_memo) >= RUN_MEMO_MAX:
            att.fold()
            att.run_memo = {}
            att.run_memo_for = sched
        busy = self._busy_ns.get(insns)
        if busy is None:
            busy = self._busy_for(insns)
        counter = getattr(sched, "cpu_counter", None)
        memo = att.run_memo[insns] = [busy, counter(busy, att.app.name) if counter is not None else None, 0]
        return memo

    def _busy_for(self, insns):
        """CPU ns of ``insns`` instructions on the board (memoised: runs repeat the same counts)."""
        busy = self._insn_ns(insns) if self._insn_ns is not None else int(insns * self.ns_per_insn)
        if len(self._busy_ns) < 4096:
            self._busy_ns[insns] = busy
        return busy

    def _account(self, att, now, insns):
        """Charge one run of ``insns`` instructions to its program, its hook and the scheduler
        (_timer_fire has this inlined: it runs once per event of a node-year)."""
        sched = self.scheduler
        memo = att.run_memo.get(insns)
        if memo is None or att.run_memo_for is not sched:
            memo = self._run_memo(att, insns)
        memo[2] += 1  # the run, for att's and its hook's statistics (Attached.fold)
        counter = memo[1]
        if counter is not None:
            counter[0] += 1  # what sched.cpu_busy(now, busy, app name) would count
        elif sched is not None:
            sched.cpu_busy(now, memo[0], att.app.name)
        att.app.work_left -= insns + RUN_COST
        out = att.app.env.trace_output
        if out and len(out) > MAX_LOG:
            del out[: len(out) - MAX_LOG]

    def _throttled(self, app, now):
        """For an app out of work credit: None if a work period has passed since its credit was
        last refilled (it is refilled now), else the time it will be."""
        back = app.work_since + app.work_period_ns
        if now >= back:
            app.work_left = app.work_budget
            app.work_since = now
            return None
        return back

    def _fault(self, att, stats, now, exc):
        att.faults += 1
        stats.faults += 1
        self.fault_count += 1
        record = {"t_ns": now, "app": att.app.name, "hook": att.hook.name, "section": att.section,
                  "pc": exc.pc, "kind": exc.kind, "reason": exc.reason, "message": str(exc)}
        if len(self.faults) < MAX_FAULT_RECORDS:
            self.faults.append(record)
        window = att.app.manifest.fault_window_ns
        recent = [t for t in att.recent_faults if now - t < window]
        recent.append(now)
        att.recent_faults = recent
        if len(recent) >= att.app.manifest.fault_max and not att.detached:
            self.detach(att, "%d faults within %d s; last: %s" % (len(recent), window // NS_PER_S, exc))

    def detach(self, att, reason):
        """Detach one program from its hook; an event records it."""
        att.detached = True
        lst = self.hooks[att.hook.name]
        if att in lst:
            lst.remove(att)
        self._timer_atts = {}
        self.events.append({"t_ns": self.clock.now_ns(), "event": "detached", "app": att.app.name,
                            "hook": att.hook.name, "section": att.section, "reason": reason})

    # ---------------------------------------------------------------- timers

    def arm_timer(self, app, timer_id, delay_ns, period_ns, jitter_ns=0):
        """(Re-)arm an app's timer: fires after delay_ns, then every period_ns (0 = once)."""
        timer = app.timers.get(timer_id)
        gen = (timer[0] + 1) if timer is not None else 1
        app.timers[timer_id] = [gen, period_ns, 0, jitter_ns]
        now = self.clock.now_ns()
        self.queue.push(now + delay_ns + self._jitter(jitter_ns), self._timer_fire, (app, timer_id, gen))

    def cancel_timer(self, app, timer_id):
        timer = app.timers.pop(timer_id, None)
        return timer is not None

    def _jitter(self, jitter_ns):
        if not jitter_ns or self.platform is None:
            return 0
        draw = getattr(self.platform, "jitter_ns", None)
        return draw(jitter_ns) if draw is not None else 0

    def _timer_fire(self, now, arg):
        """A timer expires: run the app's timer programs. In a simulated run (``_direct_end``
        set by run_until) a periodic timer whose next expiry would be the very next event to
        pop fires again here, without the heap: the same events in the same order."""
        app, timer_id, gen = arg
        queue = self.queue
        heap = queue._heap
        timers = app.timers
        stats = self._timer_stats
        out = app.env.trace_output
        while True:
            timer = timers.get(timer_id)
            if timer is None or timer[0] != gen:
                return  # cancelled or re-armed
            if app.work_left <= 0:
                back = self._throttled(app, now)
                if back is not None:
                    self._timer_throttled(app, timer_id, gen, timer, now, back)
                    return
            expirations = timer[2] + 1
            timer[2] = expirations
            period = timer[1]
            if period:
                # the next expiry takes its sequence number now, as a push here would
                seq = queue._seq + 1
                queue._seq = seq
                at = now + period
                if timer[3]:
                    at += self._jitter(timer[3])
            else:
                del timers[timer_id]
            # the hot path of a node-year: pack the timer context directly (layout from hooks.py)
            # and run the program with _run's accounting inlined
            stats.events += 1
            atts = self._timer_atts.get(app.id)
            if atts is None:
                atts = self._timer_atts[app.id] = tuple(a for a in self.hooks["timer"] if a.app is app)
            sched = self.scheduler
            for att in atts:
                if att.detached:
                    continue
                _pack_timer(att.ctx, 0, now, period, timer_id, expirations)
                vm = att.vm
                try:
                    vm.run_event(att.ctx_addr)
                except BPFFault as exc:
                    self._account(att, now, vm.last.insns_executed)
                    self._fault(att, stats, now, exc)
                    continue
                ex = vm.ex  # Execution.insns_executed, inlined (the run may not have set a budget)
                insns = (_UNLIMITED if ex.budget is None else ex.budget) - ex.left
                memo = att.run_memo.get(insns)
                if memo is None or att.run_memo_for is not sched:
                    memo = self._run_memo(att, insns)
                memo[2] += 1  # the run, for att's and the hook's statistics (Attached.fold)
                counter = memo[1]
                if counter is not None:
                    counter[0] += 1  # what sched.cpu_busy(now, busy, app.name) would count
                elif sched is not None:
                    sched.cpu_busy(now, memo[0], app.name)
                app.work_left -= insns + RUN_COST
                if out and len(out) > MAX_LOG:
                    del out[: len(out) - MAX_LOG]
            if not period:
                return
            end = self._direct_end
            if end is None or at >= end or self.dead_at_ns is not None:
                _heappush(heap, (at, seq, self._timer_fire_bound, arg))
                return
            if heap:
                first = heap[0]
                if first[0] < at or (first[0] == at and first[1] < seq):
                    _heappush(heap, (at, seq, self._timer_fire_bound, arg))
                    return
            # (at, seq) would be the heap's minimum: pop it at once
            now = at
            self.clock.now = at
            self._direct_fired += 1

    def _timer_throttled(self, app, timer_id, gen, timer, now, back):
        """A timer of an app out of work credit expires at ``now``; the credit is back at
        ``back``. A periodic timer's expirations before then are dropped (counted) and it goes
        on at its first expiry after; a one-shot timer is deferred to ``back``."""
        period = timer[1]
        if period:
            skipped = (back - now + period - 1) // period
            at = now + skipped * period + (self._jitter(timer[3]) if timer[3] else 0)
        else:
            skipped = 1
            at = back
        app.throttled += skipped
        self._timer_stats.throttled += skipped
        self.queue.push(at, self._timer_fire_bound, (app, timer_id, gen))

    # ---------------------------------------------------------------- devices (helpers call these)

    def sensor_read(self, app, sensor_id):
        if self.platform is None:
            return None
        now = self.clock.now_ns()
        value = self.platform.sensor_read(sensor_id, now)
        if value is not None and self.scheduler is not None:
            self.scheduler.sensor_read(now, sensor_id, app.name)
        return value

    def gpio_read(self, pin):
        read = getattr(self.platform, "gpio_read", None)
        return read(pin) if read is not None else None

    def gpio_write(self, app, pin, level):
        write = getattr(self.platform, "gpio_write", None)
        return bool(write(pin, level)) if write is not None else False

    def radio_send(self, app, payload, deadline_rel_ns):
        """Queue a packet for the scheduler; False when the transmit queue is full."""
        nbytes = len(payload)
        tx = self.tx
        if tx["in_flight_bytes"] + nbytes > self.policy("tx_queue_limit_bytes", TX_QUEUE_LIMIT_BYTES):
            tx["rejected"] += 1
            return False
        now = self.clock.now_ns()
        deadline = now + deadline_rel_ns
        tx["queued"] += 1
        tx["queued_bytes"] += nbytes
        tx["in_flight"] += 1
        tx["in_flight_bytes"] += nbytes
        app.tx_packets += 1
        app.tx_bytes += nbytes
        if self.scheduler is not None:
            self._sched_tx.append((nbytes, app, deadline, now, payload))
            self.scheduler.enqueue_tx(now, nbytes, deadline, app.name)
            self._reschedule_wakeup()
        else:
            start = now if now > self._radio_free_ns else self._radio_free_ns
            airtime = getattr(self.platform, "airtime_ns", None)
            done = start + (airtime(nbytes) if airtime is not None else 0)
            self._radio_free_ns = done
            self.queue.push(done, self._tx_done_plain, (nbytes, app, deadline, now, payload))
        self._update_txq()
        return True

    def radio_listen(self, app, duration_ns):
        if self.scheduler is not None:
            self.scheduler.request_listen(self.clock.now_ns(), duration_ns, app.name)
            self._reschedule_wakeup()

    def energy_used_uj(self):
        if self.scheduler is None:
            return 0
        self.scheduler.advance(self.clock.now_ns())
        return int(self.scheduler.energy_used_j() * 1000000)

    def battery_permille(self):
        if self.scheduler is None:
            return 1000
        self.scheduler.advance(self.clock.now_ns())
        soc = self.scheduler.soc()
        return max(0, min(1000, int(soc * 1000 + 0.5)))

    def log(self, app, text, value):
        self.log_count += 1
        if len(self.logs) >= MAX_LOG:
            del self.logs[0]
        try:
            msg = text.decode()
        except Exception:
            msg = repr(text)
        now = self.clock.now_ns()
        self.logs.append((now, app.name, msg, value))
        log_line = getattr(self.platform, "log_line", None)
        if log_line is not None:
            log_line(now, app.name, msg, value)
        if self.trace_sink is not None:
            self.trace_sink("log", now, app.name, "%s %d" % (msg, value))

    # ---------------------------------------------------------------- radio

    def _radio_rx(self, values):
        sched = self.scheduler
        if sched is not None and not sched.rx_arrival(values["now_ns"], values.get("len", 0)):
            self.rx["missed"] += 1   # the radio was not listening: the packet never reaches a program
            return []
        self.rx["received"] += 1
        results = self._run_hook(self.hooks["radio_rx"], "radio_rx", values)
        nbytes = values.get("len", 0)
        for att in self.hooks["radio_rx"]:
            _demand_add(self.shared_maps["iot_app_demand"], att.app.id, 0, nbytes, 0, 1)
        if 0 in results:
            self.rx["dropped"] += 1
        else:
            self.rx["passed"] += 1
        return results

    def _tx_done_plain(self, now, arg):
        nbytes, app, deadline, queued_at, payload = arg
        delivered = getattr(self.platform, "delivered", None)
        ok = delivered() if delivered is not None else True
        self._complete_tx(now, nbytes, app, deadline, queued_at, ok, payload)

    def _complete_tx(self, now, nbytes, app, deadline, queued_at, ok, payload):
        transmit = getattr(self.platform, "transmit", None)
        if transmit is not None:
            # a real platform sends the bytes here (serial, MQTT); its answer counts as delivery
            ok = bool(transmit(app.name, payload, now)) and ok
        tx = self.tx
        tx["in_flight"] -= 1
        tx["in_flight_bytes"] -= nbytes
        missed = 1 if now > deadline else 0
        if ok:
            tx["sent"] += 1
        else:
            tx["lost"] += 1
        tx["missed_deadlines"] += missed
        _demand_add(self.shared_maps["iot_app_demand"], app.id, nbytes, 0, 1, 0)
        self._update_txq()
        # radio_tx_done's fields: now_ns, latency_ns, nbytes, ok, deadline_missed, pad
        self._run_hook_values("radio_tx_done", now, (now, now - queued_at, nbytes, 1 if ok else 0, missed, 0), app)

    def _reschedule_wakeup(self):
        sched = self.scheduler
        if sched is None:
            return
        take = getattr(sched, "take_done", None)
        if take is not None:
            # finished transmissions become events at their own times (no wake-up for them)
            for done_ns, nbytes, app_name, ok in take():
                now = self.clock.now_ns()
                at = now if done_ns is None or done_ns < now else done_ns
                self.queue.push(at, self._tx_finished, (nbytes, app_name, ok))
        wake = sched.next_wakeup_ns()
        if wake is None or wake == self._wakeup_at:
            return
        now = self.clock.now_ns()
        if wake < now:
            wake = now
        self._wakeup_gen += 1
        self._wakeup_at = wake
        self.queue.push(wake, self._wakeup, self._wakeup_gen)

    def _wakeup(self, now, gen):
        if gen != self._wakeup_gen:
            return
        self._wakeup_at = None
        done = self.scheduler.on_wakeup(now)
        for done_ns, nbytes, app_name, ok in done or ():  # a scheduler without take_done
            self._tx_finished(now if done_ns is None or done_ns < now else done_ns, (nbytes, app_name, ok))
        self._reschedule_wakeup()

    def _tx_finished(self, now, arg):
        """A transmission the scheduler timed ends now: radio_tx_done."""
        nbytes, app_name, ok = arg
        entry = self._pop_sched_tx(app_name, nbytes)
        if entry is None:
            return
        _n, app, deadline, queued_at, payload = entry
        delivered = getattr(self.platform, "delivered", None)
        if ok and delivered is not None:
            ok = delivered()
        self._complete_tx(now, nbytes, app, deadline, queued_at, ok, payload)

    def _pop_sched_tx(self, app_name, nbytes):
        pending = self._sched_tx
        for i in range(len(pending)):
            entry = pending[i]
            if entry[1].name == app_name and entry[0] == nbytes:
                del pending[i]
                return entry
        return None

    def _update_txq(self):
        tx = self.tx
        earliest = None
        for entry in self._sched_tx:  # (a loop: there are one or two)
            if earliest is None or entry[2] < earliest:
                earliest = entry[2]
        buf = self.shared_maps["iot_txq"].values
        if len(buf) < _TXQ_SIZE:
            buf.extend(bytes(_TXQ_SIZE - len(buf)))
        _pack_txq(buf, 0, tx["in_flight_bytes"], earliest or 0, tx["in_flight"], tx["sent"], tx["lost"],
                  tx["missed_deadlines"])

    # ---------------------------------------------------------------- battery

    def _battery_event(self, now, arg):
        permille = self.battery_permille()
        flags = 0
        if permille < self.policy("low_battery_permille", LOW_PERMILLE):
            flags |= 1
        if permille < self.policy("critical_permille", CRITICAL_PERMILLE):
            flags |= 2
        # battery's fields: now_ns, energy_used_uj, soc_permille, flags
        self._run_hook_values("battery", now, (now, self.energy_used_uj(), permille, flags))
        if self._battery_check(now):
            return
        period = self.policy("battery_report_ns", self.battery_report_ns)
        self.queue.push(now + period, self._battery_event, None)
        self._schedule_death(now, now + period)

    def _battery_check(self, now):
        """True (and the node stopped now) if the battery is dead. The death is dated when the
        node stops: a constant drain's closed-form nanosecond (the check is put there), or, with
        bursts, the check that finds the battery empty, at most half the time the previous check
        predicted after the burst that emptied it (see _schedule_death); the battery's own
        dead_at_ns is set to the same time, so every report gives one lifetime."""
        sched = self.scheduler
        if sched is None or self.dead_at_ns is not None or not sched.battery_dead():
            return self.dead_at_ns is not None
        batt = getattr(sched, "battery", None)
        boot = sched.boot_ns or 0
        if batt is not None and getattr(batt, "dead_at_ns", None) is not None and boot + batt.dead_at_ns < now:
            batt.dead_at_ns = now - boot
        self.dead_at_ns = now
        self.events.append({"t_ns": now, "event": "battery_dead"})
        return True

    def _schedule_death(self, now, before, chained=False):
        """A check at the moment the battery empties at its present drain, if before ``before``
        (the closed form, computed once per battery report, never per event). While more than a
        millisecond is left the check goes halfway there and predicts again, at the faster of the
        report interval's drain and the last check's (a check's short interval may hold no burst),
        so a burst that empties the battery early is found soon after it (a few dozen checks in a
        node's life)."""
        batt = getattr(self.scheduler, "battery", None)
        empty_in = getattr(batt, "empty_in_ns", None)
        self._death_gen = gen = self._death_gen + 1  # one pending check at a time
        if empty_in is None:
            return
        if not chained:
            self._death_rate = batt.last_net_a  # the drain of a whole report interval
        elif batt.last_net_a is not None and (self._death_rate is None or batt.last_net_a > self._death_rate):
            self._death_rate = batt.last_net_a  # a check's short interval drained faster
        left = empty_in(self._death_rate)
        if left is not None and now + left < before:
            self.queue.push(now + (left if left <= 1000000 else (left + 1) // 2), self._battery_death, gen)

    def _battery_death(self, now, gen):
        if gen is not None and gen != self._death_gen:
            return  # superseded by a later prediction
        self.battery_permille()  # integrate the battery up to now
        if not self._battery_check(now):
            self._schedule_death(now, now + self.policy("battery_report_ns", self.battery_report_ns), True)

    def policy(self, name, default):
        """A parameter from the iot_policy map (programs and remote commands may change it); 0 = default."""
        index = _POLICY_INDEX.get(name)
        if index is None:
            index = _POLICY_INDEX[name] = wellknown.policy_index(name)
        buf = self.shared_maps["iot_policy"].values
        value = struct.unpack_from("<Q", buf, index * 8)[0] if len(buf) >= index * 8 + 8 else 0
        return value if value else default

    def _policy_values(self):
        """The iot_policy map as a tuple of u64 (the scheduler's param reader). While the map's
        bytes are unchanged the same tuple is returned, so the scheduler can skip the compare."""
        buf = self.shared_maps["iot_policy"].values
        n = wellknown.POLICY_SLOTS * 8
        cached = self._policy_cache
        if cached is not None and len(buf) >= n and buf[:n] == cached[0]:
            return cached[1]
        values = tuple(_array_values(self.shared_maps["iot_policy"], wellknown.POLICY_SLOTS))
        self._policy_cache = (bytes(buf[:n]), values) if len(buf) >= n else None
        return values

    # ---------------------------------------------------------------- reporting

    def summary(self):
        """Deterministic dict: per-hook stats, per-program stats, faults, radio, energy."""
        hooks = {}
        for name in HOOK_NAMES:
            hooks[name] = self.hook_stats[name].as_dict()
        programs = []
        for app in self.apps:
            for att in app.attached:
                programs.append({"app": app.name, "hook": att.hook.name, "section": att.section,
                                 "runs": att.runs, "instructions": att.insns, "faults": att.faults,
                                 "handler_ns": att.handler_ns, "detached": att.detached})
        out = {"node_id": self.node_id, "seed": self.seed, "now_ns": self.clock.now_ns(),
               "apps": [a.name for a in self.apps], "hooks": hooks, "programs": programs,
               "faults": self.fault_count, "fault_records": self.faults[:20], "events": list(self.events),
               "radio": {"tx": dict(self.tx), "rx": dict(self.rx)}, "logs": self.log_count,
               "battery_dead_ns": self.dead_at_ns}
        throttled = {}
        for app in self.apps:
            if app.throttled:
                throttled[app.name] = app.throttled
        if throttled:  # (only then: runs within their bounds report as before)
            out["throttled"] = {"apps": throttled, "hooks": dict(
                (name, self.hook_stats[name].throttled) for name in HOOK_NAMES if self.hook_stats[name].throttled)}
        if self.scheduler is not None:
            out["energy"] = self.scheduler.summary()
        return out


_CHAINING_HELPERS = (12,)  # bpf_tail_call (bpf_loop callbacks are inside the verifier's bound)


def _prog_arrays_used(program):
    """The prog_array maps ``program`` loads (lddw map_fd/map_idx), i.e. may tail-call through."""
    out = []
    maps = getattr(program, "maps", None) or []
    for insn in program.insns:
        if insn is not None and insn.opcode == 0x18 and insn.src in (1, 5):   # BPF_PSEUDO_MAP_FD/IDX
            k = insn.imm & 0xFFFFFFFF
            if k < len(maps) and getattr(maps[k], "get_program", None) is not None and maps[k] not in out:
                out.append(maps[k])
    return out


def _slot_programs(m):
    """The programs in a prog_array's slots."""
    for index in range(m.spec.max_entries if m.spec.max_entries < 1024 else 1024):
        target = m.get_program(index)
        if target is not None:
            yield target


def _calls_any(program, helper_ids):
    """True if the program calls one of these helpers (a BPF_CALL with src 0 and that imm)."""
    for insn in program.insns:
        if insn is not None and insn.opcode == 0x85 and insn.src == 0 and insn.imm in helper_ids:
            return True
    return False


def _check_fields(hook, fields):
    """LoadError for an unknown hook or context field (events given from outside the node)."""
    h = HOOKS.get(hook)
    if h is None:
        raise LoadError("unknown hook %r (known: %s)" % (hook, ", ".join(HOOK_NAMES)))
    for name in fields:
        if name not in h.field_names:
            raise LoadError("hook %s has no context field %r (fields: %s)" % (hook, name, ", ".join(h.field_names)))


# -------------------------------------------------------------------- well-known maps

def _make_well_known_maps():
    from iotbpf.ebpf.maps import create_map
    from iotbpf.ebpf.types import MapSpec

    out = {}
    for name, mtype, _key, _value, max_entries, _doc in wellknown.WELL_KNOWN_MAPS:
        spec = MapSpec(name, mtype, wellknown.key_size(name), wellknown.value_size(name), max_entries, 0)
        out[name] = create_map(spec)
    return out


def _is_global(name):
    """A map holding a program's global variables (.rodata, .data, .bss, .data.<name>...)."""
    return name[:1] == "."


def _rebind_maps(program, app_maps, shared, budget, own_globals=False):
    """The program with its map list pointing at the app's map objects: one object per map name
    across the app's programs (created on first use, charged to ``budget``), and the node's
    shared instance for a well-known name. ``own_globals`` (an over-the-air update): the
    program's global-variable maps stay its own, initialised from its object or bundle."""
    from iotbpf.ebpf.maps import create_map

    bound = []
    for m in getattr(program, "maps", None) or []:
        spec = getattr(m, "spec", m)
        name = spec.name
        if own_globals and _is_global(name) and name not in shared:
            bound.append(m if hasattr(m, "spec") else create_map(spec, budget))
            continue
        if name in shared:
            target = shared[name]
            _check_compatible(spec, target.spec)
        else:
            target = app_maps.get(name)
            if target is None:
                target = m if hasattr(m, "spec") else create_map(spec, budget)
                app_maps[name] = target
            else:
                _check_compatible(spec, target.spec)
        bound.append(target)
    program.maps = bound
    return program


def _check_compatible(spec, want):
    if (spec.type, spec.key_size, spec.value_size) != (want.type, want.key_size, want.value_size):
        raise LoadError("map %s: declared twice with different layouts, or unlike the well-known one "
                        "(type %d, key %d, value %d bytes)" % (want.name, want.type, want.key_size,
                                                               want.value_size))


def _array_store(array_map, index, fmt, values):
    buf = array_map.values
    size = array_map.spec.value_size
    need = (index + 1) * size
    if len(buf) < need:
        buf.extend(bytes(need - len(buf)))
    struct.pack_into(fmt, buf, index * size, *values)


def _array_store_all(array_map, values):
    for i in range(len(values)):
        _array_store(array_map, i, "<Q", (values[i],))


def _array_values(array_map, count):
    buf = array_map.values
    if len(buf) >= count * 8:
        return list(struct.unpack_from("<%dQ" % count, buf, 0))
    out = []
    for i in range(count):
        if (i + 1) * 8 <= len(buf):
            out.append(struct.unpack_from("<Q", buf, i * 8)[0])
        else:
            out.append(0)
    return out


_DEMAND_KEYS = {}  # app id -> its u32 key in iot_app_demand


def _demand_add(demand_map, app_id, tx_bytes, rx_bytes, tx_packets, rx_packets):
    key = _DEMAND_KEYS.get(app_id)
    if key is None:
        key = _DEMAND_KEYS[app_id] = struct.pack("<I", app_id)
    fmt = wellknown.APP_DEMAND.fmt
    slot = demand_map.lookup_slot(key)
    if slot is None:
        demand_map.update(key, struct.pack(fmt, tx_bytes, rx_bytes, tx_packets, rx_packets))
        return
    # the entry exists: add in place, as a program's atomic adds to its value would
    buf = demand_map.values
    off = slot * demand_map.value_size
    a, b, c, d = struct.unpack_from(fmt, buf, off)
    struct.pack_into(fmt, buf, off, (a + tx_bytes) & 0xFFFFFFFFFFFFFFFF, (b + rx_bytes) & 0xFFFFFFFFFFFFFFFF,
                     (c + tx_packets) & 0xFFFFFFFF, (d + rx_packets) & 0xFFFFFFFF)
