"""Simulated sensors: a seeded temperature-like random walk with a daily cycle, or a CSV trace, read in
integer milli-units so CPython and MicroPython produce identical readings.
"""

import sys

from iotbpf.ebpf.isa import M64 as _MASK64
from iotbpf.ebpf.prng import Rng
from iotbpf.kernel.clock import NS_PER_DAY, parse_duration

_XS_MULT = 0x2545F4914F6CDD1D  # xorshift64*'s output multiplier (prng.Rng.u64)

_MAX_CATCHUP_STEPS = 4096  # older steps are forgotten by mean reversion anyway

# a 1000-entry table of the diurnal term per sensor where RAM is plentiful (CPython); MicroPython
# computes it when the phase changes instead. Same values either way.
_DIURNAL_TABLE = getattr(getattr(sys, "implementation", None), "name", "") != "micropython"

_CHUNK = 512  # random-walk steps drawn at a time where numpy is available (_draw_chunk)
_PHASE_NS = NS_PER_DAY // 1000  # the diurnal term's step: 1/1000 of a day (86.4 s, exact)
_jumps = []  # [table or None], made on first use: see _jump_table


def _jump_table():
    """(J, numpy, bits): numpy's uint64 array J with J[j, k] the xorshift64 state k + 1 steps
    after the state 1 << j (a row per bit), and bits[j] = 1 << j; None without numpy
    (MicroPython, or not installed). Made once."""
    if not _jumps:
        table = None
        if _DIURNAL_TABLE:  # CPython
            try:
                import numpy
            except ImportError:
                numpy = None
            if numpy is not None:
                bits = numpy.array([1 << j for j in range(64)], dtype=numpy.uint64)
                state = bits.copy()
                table = numpy.empty((_CHUNK, 64), dtype=numpy.uint64)
                s12, s25, s27 = numpy.uint64(12), numpy.uint64(25), numpy.uint64(27)
                for k in range(_CHUNK):
                    state ^= state >> s12
                    state ^= state << s25  # numpy's uint64 shift drops the bits above 63
                    state ^= state >> s27
                    table[k] = state
                table = (numpy.ascontiguousarray(table.T), numpy, bits)
        _jumps.append(table)
    return _jumps[0]


def _draw_chunk(x, size, span):
    """The _CHUNK xorshift64* states after state ``x`` and each one's draw ``below(span) - size``
    (two lists of ints), exactly as stepping one by one gives them, or None without numpy.

    xorshift64's step is linear over GF(2): the state k steps after x is the XOR of the states
    k steps after each set bit of x. With those in a table (_jump_table) a whole chunk takes a
    few vector operations instead of 13 big-integer operations per step in Python."""
    jumps = _jump_table()
    if jumps is None:
        return None
    table, numpy, bits = jumps
    states = numpy.bitwise_xor.reduce(table[(numpy.uint64(x) & bits) != 0], axis=0)
    u32 = numpy.uint64(32)
    draws = ((states * numpy.uint64(_XS_MULT)) >> u32) * numpy.uint64(span) >> u32  # uint64 wraps
    return states.tolist(), (draws.astype(numpy.int64) - size).tolist()


def _sin_milli(phase_milli):
    """1000*sin(2*pi*phase) for phase in [0, 1000) (Bhaskara I's approximation, integers only)."""
    negative = phase_milli >= 500
    x = phase_milli - 500 if negative else phase_milli  # half-period in [0, 500)
    # sin(pi*u) ~ 16u(1-u) / (5 - 4u(1-u)) with u = x/500; scaled to integers
    p = x * (500 - x)  # = 250000 * u(1-u)
    value = (16 * p * 1000) // (5 * 250000 - 4 * p)
    return -value if negative else value


class RandomWalkSensor:
    """Mean-reverting random walk (one step per ``step``) plus a diurnal sine, in milli-units."""

    def __init__(self, seed, name="temperature", mean=21000, step_size=40, step="1m", diurnal=3000,
                 minimum=-40000, maximum=85000, reversion_shift=7):
        self.rng = Rng(seed, "sensor:" + name)
        self.name = name
        self.mean = int(mean)
        self.step_size = int(step_size)
        self.step_ns = parse_duration(step)
        if self.step_ns <= 0:
            raise ValueError("sensor %s: step must be a positive duration" % name)
        self.diurnal = int(diurnal)
        self.minimum = int(minimum)
        self.maximum = int(maximum)
        self.shift = int(reversion_shift)
        self.offset = 0
        self.steps_done = 0
        self._phase = -1  # the diurnal term, cached per phase step (1/1000 of a day)
        self._diurnal_now = 0
        self._diurnal = None
        if _DIURNAL_TABLE:
            self._diurnal = [(self.diurnal * _sin_milli(p)) // 1000 for p in range(1000)]
        # upcoming steps drawn a chunk at a time (numpy, see _draw_chunk): their generator states
        # and draws, and the index of the next; None: each step is drawn when it is taken
        self._draws = [] if _jump_table() is not None else None
        self._states = []
        self._next = 0

    def read(self, now_ns):
        target = now_ns // self.step_ns
        todo = target - self.steps_done
        draws = self._draws
        if todo == 1 and draws is not None and self._next < len(draws):
            # one step, already drawn: the read of each sample of a node-year
            i = self._next
            self._next = i + 1
            self.rng.state = self._states[i]
            offset = self.offset + draws[i]
            offset -= offset >> self.shift if offset > 0 else -((-offset) >> self.shift)
            self.offset = offset
        elif todo > 0:
            offset = self._walk(todo if todo < _MAX_CATCHUP_STEPS else _MAX_CATCHUP_STEPS)
        else:
            offset = self.offset
        self.steps_done = target
        table = self._diurnal
        if table is not None:
            value = self.mean + offset + table[(now_ns % NS_PER_DAY) // _PHASE_NS]
        else:
            phase = (now_ns % NS_PER_DAY) // _PHASE_NS
            if phase != self._phase:
                self._phase = phase
                self._diurnal_now = (self.diurnal * _sin_milli(phase)) // 1000
            value = self.mean + offset + self._diurnal_now
        if value < self.minimum:
            return self.minimum
        if value > self.maximum:
            return self.maximum
        return value

    def _walk(self, todo):
        """Take ``todo`` steps of the walk; the new offset."""
        # rng.below(2 * size + 1) per step, with the xorshift64* generator (prng.Rng.u64)
        # inlined: the same draws, without two calls per step
        rng = self.rng
        size = self.step_size
        shift = self.shift
        offset = self.offset
        draws = self._draws
        if draws is not None:  # drawn ahead, a chunk at a time
            states = self._states
            i = self._next
            while todo > 0:
                if i == len(draws):
                    states, draws = _draw_chunk(states[i - 1] if i else rng.state, size, 2 * size + 1)
                    i = 0
                offset += draws[i]
                offset -= offset >> shift if offset > 0 else -((-offset) >> shift)
                i += 1
                todo -= 1
            rng.state = states[i - 1]
            self._states = states
            self._draws = draws
            self._next = i
        else:
            span = 2 * size + 1
            x = rng.state
            while todo > 0:
                x ^= x >> 12
                x ^= (x << 25) & _MASK64
                x ^= x >> 27
                offset += ((((x * _XS_MULT) & _MASK64) >> 32) * span >> 32) - size
                offset -= offset >> shift if offset > 0 else -((-offset) >> shift)
                todo -= 1
            rng.state = x
        self.offset = offset
        return offset


class TraceSensor:
    """Replays a CSV trace ``time_s,value`` (value in milli-units); holds the last value before now."""

    def __init__(self, rows, name="trace"):
        self.name = name
        self.times = [t for t, _v in rows]
        self.values = [v for _t, v in rows]
        self.index = 0

    def read(self, now_ns):
        if not self.times or now_ns < self.times[0]:
            return None
        i = self.index
        n = len(self.times)
        if self.times[i] > now_ns:
            i = 0
        while i + 1 < n and self.times[i + 1] <= now_ns:
            i += 1
        self.index = i
        return self.values[i]


def parse_csv(text, where="sensor trace"):
    """Rows of ``time_s,value``: time in seconds (int or decimal), value an integer; '#' comments."""
    rows = []
    line_no = 0
    for line in text.splitlines():
        line_no += 1
        line = line.strip()
        if not line or line.startswith("#") or line.lower().startswith("time"):
            continue
        parts = line.split(",")
        if len(parts) != 2:
            raise ValueError("%s line %d: expected 'time_s,value'" % (where, line_no))
        try:
            t = parse_duration(parts[0].strip() + "s")
            v = int(parts[1].strip())
        except ValueError:
            raise ValueError("%s line %d: expected 'time_s,value' numbers" % (where, line_no)) from None
        if rows and t < rows[-1][0]:
            raise ValueError("%s line %d: time goes backwards" % (where, line_no))
        rows.append((t, v))
    return rows


def make_sensor(seed, spec, read_file=None):
    """A sensor from a manifest's sim.sensors entry: {"model": "random_walk"|"trace", ...}."""
    model = spec.get("model", "random_walk")
    name = spec.get("name", "sensor%d" % spec.get("id", 0))
    if model == "random_walk":
        kwargs = {}
        for key in ("mean", "step_size", "step", "diurnal", "minimum", "maximum"):
            if key in spec:
                kwargs[key] = spec[key]
        return RandomWalkSensor(seed, name, **kwargs)
    if model == "trace":
        if read_file is None or "file" not in spec:
            raise ValueError("sensor %s: a trace sensor needs a 'file'" % name)
        return TraceSensor(parse_csv(read_file(spec["file"]), spec["file"]), name)
    raise ValueError("sensor %s: unknown model %r (random_walk, trace)" % (name, model))

