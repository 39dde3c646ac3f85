"""kernel/events.py: the EventQueue API the runtime uses (no private fields from outside)."""

import ast
from pathlib import Path

from iotbpf.kernel.clock import VirtualClock
from iotbpf.kernel.events import EventQueue

KERNEL = Path(__file__).resolve().parents[2] / "iotbpf" / "kernel"


def test_a_reserved_sequence_number_sorts_as_if_pushed_when_taken():
    q = EventQueue()
    seen = []
    seq = q.take_seq()                      # taken first ...
    q.push(10, lambda t, a: seen.append(a), "pushed")
    assert q.comes_first(10, seq) and not q.comes_first(10, q.take_seq())
    q.push_seq(10, seq, lambda t, a: seen.append(a), "reserved")   # ... pushed second
    assert q.comes_first(9, 10 ** 9) and not q.comes_first(11, 0)
    q.dispatch(11, VirtualClock())
    assert seen == ["reserved", "pushed"]
    assert EventQueue().comes_first(0, 1)   # an empty queue: anything comes first


def test_dispatch_sets_the_clock_stops_before_the_end_and_after_stop():
    q = EventQueue()
    clock = VirtualClock()
    seen = []

    def handler(t, arg):
        seen.append((t, clock.now_ns(), arg))
        if arg == "stop":
            q.stop()

    for t, arg in ((5, "a"), (1, "b"), (7, "stop"), (8, "c"), (20, "late")):
        q.push(t, handler, arg)
    assert q.dispatch(7, clock) == 2                 # before 7 only
    assert seen == [(1, 1, "b"), (5, 5, "a")]
    assert q.dispatch(100, clock) == 1 and seen[-1] == (7, 7, "stop")   # stop() ends the loop
    assert [(t, arg) for t, _fn, arg in q.pending()] == [(8, "c"), (20, "late")]


def test_dispatch_with_progress_and_dispatch_due():
    q = EventQueue()
    calls = []
    for t in range(5000):
        q.push(t, lambda t, a: None)
    assert q.dispatch(4500, VirtualClock(), True, calls.append) == 4500
    assert calls == [4095]
    got = []
    q.push(3, lambda t, a: got.append((t, a)), "due")
    q.dispatch_due(4600)           # real time: due events run now, at the time given
    assert got == [(4600, "due")] and q.peek_time() == 4601   # 4500 .. 4600 ran too


def test_the_runtime_uses_no_private_field_of_the_queue():
    for path in sorted(KERNEL.glob("*.py")):
        if path.name == "events.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("_heap", "_seq", "_stopped"):
                raise AssertionError("%s:%d uses EventQueue.%s" % (path.name, node.lineno, node.attr))
