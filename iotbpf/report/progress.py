"""A progress display for long runs (simulate, compare, fleets): label, percent, rate and ETA on
stderr, drawn by tqdm only on a terminal. Display only: it never changes what a run computes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def bar(label: str, total_ns: int, enabled: bool = True, stream=None) -> Iterator[Callable[[int], None] | None]:
    """``with bar("simulate sensor_node", ns) as show: run(progress=show)``; ``show`` is None when
    there is no terminal (or ``enabled`` is false). The rate is in simulated days per second."""
    stream = stream or sys.stderr
    if not enabled or not (hasattr(stream, "isatty") and stream.isatty()) or total_ns <= 0:
        yield None
        return
    from tqdm import tqdm

    days = total_ns / 86400e9
    with tqdm(total=days, desc=label, unit="d", file=stream, leave=False, ncols=_columns(stream), nrows=24,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.3g}/{total:.3g} simulated days "
                         "[{elapsed}<{remaining}, {rate_fmt}]") as progress:
        def show(now_ns: int) -> None:
            progress.update(min(days, now_ns / 86400e9) - progress.n)

        yield show
        progress.update(days - progress.n)   # the end: runs report progress in steps, not at 100 %


def _columns(stream) -> int:
    """The terminal's width, or 100 when it does not say (a fresh pseudo-terminal reports 0 columns and
    0 rows, and tqdm draws nothing in 0 rows: callers pass nrows too)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 100
    except (OSError, ValueError, AttributeError):
        return 100


class NodeBar:
    """The fleet's progress: ``NodeBar("fleet")(done, total)`` per finished node."""

    def __init__(self, label: str = "fleet", stream=None):
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label = label
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.label, unit="node", file=self.stream, leave=False,
                             ncols=_columns(self.stream), nrows=24)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._bar.close()
