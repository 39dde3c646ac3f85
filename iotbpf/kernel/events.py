"""The discrete-event queue: events ordered by time, then by insertion order, deterministically.

An event is (time_ns, seq, fn, arg); handling it calls ``fn(time_ns, arg)``. Cancelling is lazy
(handlers check a generation number), so the queue never searches. It must never compare
callbacks or payloads: the sequence number makes every key unique.
"""

import heapq

_heappop = heapq.heappop
_heappush = heapq.heappush


class EventQueue:
    """Min-heap of (time_ns, seq, fn, arg), and the loop that handles its events in order.

    A handler may take a sequence number now (``take_seq``) for an event it pushes later
    (``push_seq``): the event then sorts as if pushed when the number was taken. ``stop()``
    from a handler ends ``dispatch`` after that handler."""

    def __init__(self):
        self._heap = []
        self._seq = 0
        self._stopped = False

    def push(self, time_ns, fn, arg=None):
        self._seq += 1
        _heappush(self._heap, (time_ns, self._seq, fn, arg))

    def take_seq(self):
        """The next sequence number, reserved for a later ``push_seq``."""
        self._seq += 1
        return self._seq

    def push_seq(self, time_ns, seq, fn, arg=None):
        """Push with a sequence number from ``take_seq``."""
        _heappush(self._heap, (time_ns, seq, fn, arg))

    def comes_first(self, time_ns, seq):
        """True if an event at (time_ns, seq) would be handled before every queued event."""
        heap = self._heap
        if not heap:
            return True
        first = heap[0]
        return first[0] > time_ns or (first[0] == time_ns and first[1] > seq)

    def pop(self):
        """Remove and return the earliest (time_ns, seq, fn, arg)."""
        return _heappop(self._heap)

    def peek_time(self):
        """Time of the next event, or None when the queue is empty."""
        return self._heap[0][0] if self._heap else None

    def pending(self):
        """The queued events, earliest first, as (time_ns, fn, arg) (for tests and inspection)."""
        return [(t, fn, arg) for t, _seq, fn, arg in sorted(self._heap, key=_key)]

    def stop(self):
        """End the running ``dispatch`` after the event being handled (the node stopped)."""
        self._stopped = True

    def dispatch(self, end_ns, clock, virtual=True, progress=None):
        """Handle every event before ``end_ns`` in order; returns how many were handled.

        ``virtual``: set ``clock.now`` to each event's time (a VirtualClock: time never goes
        back, events come out in time order); else sleep the clock until it. ``progress(t)``
        is called every 4096 events. Ends early after a handler called ``stop()``."""
        heap = self._heap
        handled = 0
        self._stopped = False
        if virtual and progress is None:
            # the loop of a simulated node-year: nothing but the pop, the clock and the call
            while heap and heap[0][0] < end_ns:
                t, _seq, fn, arg = _heappop(heap)
                clock.now = t
                fn(t, arg)
                handled += 1
                if self._stopped:
                    break
            return handled
        while heap and heap[0][0] < end_ns:
            t, _seq, fn, arg = _heappop(heap)
            if virtual:
                clock.now = t
            else:
                clock.sleep_until(t)
            fn(t, arg)
            handled += 1
            if self._stopped:
                break
            if progress is not None and not handled & 4095:
                progress(t)
        return handled

    def dispatch_due(self, now_ns):
        """Handle every event due at or before ``now_ns`` (a real-time loop), each at ``now_ns``."""
        heap = self._heap
        while heap and heap[0][0] <= now_ns:
            _t, _seq, fn, arg = _heappop(heap)
            fn(now_ns, arg)

    def __len__(self):
        return len(self._heap)

    def clear(self):
        self._heap = []


def _key(event):
    return (event[0], event[1])
