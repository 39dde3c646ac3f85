"""Clocks and the event queue: integer-nanosecond time, ordering by (time, insertion), determinism."""

import pytest

from iotbpf.ebpf.prng import Rng, ln
from iotbpf.kernel.clock import NS_PER_DAY, MonotonicClock, VirtualClock, format_duration, parse_duration
from iotbpf.kernel.events import EventQueue


def test_events_pop_in_time_order_then_insertion_order():
    q = EventQueue()
    for t, label in ((30, "c"), (10, "a1"), (20, "b"), (10, "a2"), (10, "a3")):
        q.push(t, None, label)
    order = [q.pop()[3] for _ in range(len(q))]
    assert order == ["a1", "a2", "a3", "b", "c"]


def test_equal_keys_never_compare_callbacks_or_payloads():
    q = EventQueue()
    q.push(5, object(), {"x": 1})
    q.push(5, object(), {"x": 2})  # dicts and objects are not orderable: the seq decides
    assert q.pop()[3] == {"x": 1}


def test_peek_time_and_empty_queue():
    q = EventQueue()
    assert q.peek_time() is None
    q.push(7, None)
    assert q.peek_time() == 7 and len(q) == 1


def test_virtual_clock_jumps_and_refuses_to_go_back():
    c = VirtualClock()
    c.sleep_until(NS_PER_DAY)
    assert c.now_ns() == NS_PER_DAY
    with pytest.raises(ValueError):
        c.sleep_until(5)


def test_monotonic_clock_moves_forward():
    c = MonotonicClock()
    a = c.now_ns()
    c.sleep_until(a + 1000000)
    assert c.now_ns() >= a + 1000000


@pytest.mark.parametrize("text,ns", [("1y", 365 * NS_PER_DAY), ("30d", 30 * NS_PER_DAY),
                                     ("1.5h", 5400 * 10**9), ("500ms", 5 * 10**8), ("2m", 120 * 10**9),
                                     ("0.25s", 25 * 10**7),
                                     ("10us", 10000), ("7ns", 7)])
def test_durations_parse_to_integer_nanoseconds(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["", "10", "x", "-1d", "1e3s", "1..2s", "d"])
def test_bad_durations_are_rejected_with_a_readable_message(bad):
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(bad)


def test_format_duration_round_trips_whole_units():
    for text in ("1y", "30d", "3h", "15m", "5s", "250ms"):
        assert format_duration(parse_duration(text)) == text


def test_prng_streams_are_reproducible_and_independent():
    a = [Rng(42, "gpio:1").u32() for _ in range(1)]
    b = Rng(42, "gpio:1")
    c = Rng(42, "gpio:2")
    assert [b.u32()] == a
    assert Rng(42, "gpio:1").u64() != c.u64()
    r = Rng(1)
    assert all(0 <= r.below(7) < 7 for _ in range(1000))


def test_own_log_matches_math_log():
    import math

    for u in (1.0, 0.5, 0.3, 1e-9, 0.999999, 2.0 ** -40):
        assert abs(ln(u) - math.log(u)) < 1e-12 * max(1.0, abs(math.log(u)))


def test_exponential_draws_have_the_requested_mean():
    r = Rng(3)
    n = 20000
    mean = sum(r.expo_ns(1000000) for _ in range(n)) / n
    assert 0.97e6 < mean < 1.03e6
