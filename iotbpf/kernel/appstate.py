"""An app's state on a node: its environment for helpers (AppEnv), the programs attached to its
hooks (Attached) with their statistics (HookStats), and its work credit (docs/runtime.md, "Work
bounds"). Part of the runtime (kernel/runtime.py); MicroPython-compatible.
"""

from iotbpf.ebpf.prng import Rng
from iotbpf.kernel import helpers as iot_helpers
from iotbpf.kernel.clock import NS_PER_S, VirtualClock

_SENSOR_ERROR = iot_helpers.SENSOR_ERROR
MAX_SENSOR_CACHE = 64  # sensor readers kept per app (a board has a handful); unknown ids keep none
_MASK64 = iot_helpers.MASK64
MAX_LOG = 1000  # log lines a node keeps, and trace lines an app keeps

# The work bound (docs/runtime.md, "Work bounds"): each app may run WORK_BUDGET instructions per
# WORK_PERIOD_NS of (virtual or real) time, each run charged RUN_COST more for the OS's part of
# an event; the manifest's ``work`` and the board's ``work_budget_insns``/``work_period_ns`` set
# them (the board's budget is also a ceiling). An app out of credit is throttled until a period
# has passed since its credit was last refilled: its events are dropped and counted.
WORK_BUDGET = 2000000   # a quarter of a 64 MHz Cortex-M4's second at 125 ns an instruction
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
    counter = sched.sensor_counter if sched is not None else None
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
            sensor = [platform.sensor_reader(sensor_id), None]
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
