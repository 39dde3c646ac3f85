"""Clocks behind one interface: virtual integer-nanosecond time for simulation, monotonic time on devices.

``now_ns()`` reads the clock, ``sleep_until(t_ns)`` waits (real) or jumps (virtual) to ``t_ns``.
A clock never goes backwards; it must never read wall-clock (calendar) time.
"""

import time

NS_PER_US = 1000
NS_PER_MS = 1000000
NS_PER_S = 1000000000
NS_PER_MIN = 60 * NS_PER_S
NS_PER_H = 3600 * NS_PER_S
NS_PER_DAY = 86400 * NS_PER_S
NS_PER_YEAR = 365 * NS_PER_DAY


class VirtualClock:
    """Simulated time: jumps from event to event, so idle stretches cost nothing."""

    virtual = True

    def __init__(self, start_ns=0):
        self.now = int(start_ns)

    def now_ns(self):
        return self.now

    def sleep_until(self, t_ns):
        if t_ns < self.now:
            raise ValueError("virtual clock cannot go back from %d to %d" % (self.now, t_ns))
        self.now = t_ns


def _monotonic_source():
    if hasattr(time, "monotonic_ns"):
        return time.monotonic_ns, None
    # MicroPython: ticks_us wraps around; unwrap with ticks_diff.
    return None, time.ticks_us


class MonotonicClock:
    """Real time for devices: nanoseconds since the clock was created."""

    virtual = False

    def __init__(self):
        self._ns, self._ticks = _monotonic_source()
        if self._ns is not None:
            self._origin = self._ns()
        else:
            self._last = self._ticks()
            self._acc_us = 0

    def now_ns(self):
        if self._ns is not None:
            return self._ns() - self._origin
        now = self._ticks()
        self._acc_us += time.ticks_diff(now, self._last)
        self._last = now
        return self._acc_us * NS_PER_US

    def sleep_until(self, t_ns):
        delta = t_ns - self.now_ns()
        if delta > 0:
            if hasattr(time, "sleep_us"):
                time.sleep_us(delta // NS_PER_US)
            else:
                time.sleep(delta / NS_PER_S)


_UNITS = (("ms", NS_PER_MS), ("us", NS_PER_US), ("ns", 1), ("s", NS_PER_S), ("m", NS_PER_MIN),
          ("h", NS_PER_H), ("d", NS_PER_DAY), ("y", NS_PER_YEAR))


MAX_DURATION_NS = (1 << 63) - 1  # a typed duration must leave room on the u64 nanosecond clock (~292 y)


def parse_duration(text):
    """``"1y"``, ``"30d"``, ``"1.5h"``, ``"500ms"`` or an int of nanoseconds -> integer nanoseconds.

    Raises ValueError with a readable message for anything else.
    """
    if isinstance(text, int):
        if text < 0:
            raise ValueError("negative duration %d" % text)
        return text
    s = str(text).strip()
    for unit, scale in _UNITS:
        if s.endswith(unit):
            number = s[: -len(unit)].strip()
            if number and _is_number(number):
                if "." not in number:
                    ns = int(number) * scale
                else:
                    whole, frac = number.split(".")
                    ns = int(whole or "0") * scale + (int(frac) * scale) // (10 ** len(frac))
                if ns > MAX_DURATION_NS:
                    raise ValueError("duration %r is too long (the clock counts 64-bit nanoseconds: at most "
                                     "%s)" % (s, format_duration(MAX_DURATION_NS)))
                return ns
            break
    raise ValueError("bad duration %r (use a number with a unit: ns us ms s m h d y, e.g. 30d)" % s)


def _is_number(text):
    if text.count(".") > 1:
        return False
    digits = text.replace(".", "")
    return len(digits) > 0 and digits.isdigit()


def format_duration(ns):
    """Compact human form of a nanosecond duration (``"1y"``, ``"30d"``, ``"1.5h"``, ``"250ms"``)."""
    for unit, scale in (("y", NS_PER_YEAR), ("d", NS_PER_DAY), ("h", NS_PER_H), ("m", NS_PER_MIN),
                        ("s", NS_PER_S), ("ms", NS_PER_MS), ("us", NS_PER_US)):
        if ns >= scale:
            if ns % scale == 0:
                return "%d%s" % (ns // scale, unit)
            return "%.3g%s" % (ns / scale, unit)
    return "%dns" % ns
