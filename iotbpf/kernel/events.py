"""The discrete-event queue: events ordered by time, then by insertion order, deterministically.

An event is (time_ns, seq, fn, arg); popping it calls ``fn(time_ns, arg)``. Cancelling is lazy
(handlers check a generation number), so the queue never searches. It must never compare
callbacks or payloads: the sequence number makes every key unique.
"""

import heapq


class EventQueue:
    """Min-heap of (time_ns, seq, fn, arg)."""

    def __init__(self):
        self._heap = []
        self._seq = 0

    def push(self, time_ns, fn, arg=None):
        self._seq += 1
        heapq.heappush(self._heap, (time_ns, self._seq, fn, arg))

    def pop(self):
        """Remove and return the earliest (time_ns, seq, fn, arg)."""
        return heapq.heappop(self._heap)

    def peek_time(self):
        """Time of the next event, or None when the queue is empty."""
        return self._heap[0][0] if self._heap else None

    def __len__(self):
        return len(self._heap)

    def clear(self):
        self._heap = []
