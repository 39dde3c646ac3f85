"""Trace and log lines reaching the user (bcc's ``trace_print`` in spirit): bpf_trace_printk
output and iot_log lines with their virtual timestamps, streamed to a file or stdout as they
happen, and bounded (after ``limit`` lines the rest are counted, not written)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO

DEFAULT_LIMIT = 100_000


def format_line(kind: str, t_ns: int, app: str, text: str) -> str:
    """``    12.000000500 sensor_node trace: text`` (seconds with ns, like trace_pipe's clock)."""
    label = "bpf_trace_printk" if kind == "trace" else "iot_log"
    return "%6d.%09d %s %s: %s" % (t_ns // 1_000_000_000, t_ns % 1_000_000_000, app, label,
                                      text.rstrip("\n"))


class TraceLog:
    """A sink for ``Runtime.trace_sink`` and standalone runs: writes each line at once."""

    def __init__(self, target: str, limit: int = DEFAULT_LIMIT):
        if limit < 0:
            from iotbpf.ebpf.errors import IotbpfError

            raise IotbpfError("--trace-limit must be >= 0, got %d" % limit)
        self.target = target
        self.limit = limit
        self.written = 0
        self.dropped = 0
        if target == "-":
            self._out: IO[str] = sys.stdout
            self._close = False
        else:
            try:
                self._out = open(target, "w", encoding="utf-8")
            except OSError as exc:
                from iotbpf.ebpf.errors import IotbpfError

                raise IotbpfError("cannot write trace log %s: %s" % (target, exc.strerror or exc)) from None
            self._close = True

    def __call__(self, kind: str, t_ns: int, app: str, text: str) -> None:
        if self.written >= self.limit:
            self.dropped += 1
            return
        self.written += 1
        self._out.write(format_line(kind, t_ns, app, text) + "\n")

    def close(self) -> None:
        if self.dropped:
            self._out.write("# %d more trace/log lines not written (--trace-limit %d)\n"
                            % (self.dropped, self.limit))
        self._out.flush()
        if self._close:
            self._out.close()


def attach(runtime, target: str | None, limit: int = DEFAULT_LIMIT) -> TraceLog | None:
    """Stream a node's trace and log lines to ``target`` ('-' = stdout); None when not asked."""
    if not target:
        return None
    log = TraceLog(target, limit)
    runtime.trace_sink = log
    return log


def standalone_env(sink: Callable[[str, int, str, str], None], name: str):
    """A VM Environment whose bpf_trace_printk lines go to ``sink`` (for ``iotbpf run``)."""
    from iotbpf.ebpf.engines.vm import Environment

    env = Environment()

    def on_trace(text: str) -> None:
        sink("trace", env.clock_ns(), name, text)

    env.on_trace = on_trace
    return env


class EventsOut:
    """``--events-out FILE``: every record a program puts in a ring buffer or perf event array,
    written as one JSON line the moment it is published (``t_ns``, ``app``, ``map``, ``cpu``
    for perf samples, ``data`` in hex), so nothing piles up in the node's buffers."""

    def __init__(self, runtime, target: str):
        import json

        self._json = json
        self.runtime = runtime
        self.count = 0
        try:
            self._out = sys.stdout if target == "-" else open(target, "w", encoding="utf-8")
        except OSError as exc:
            from iotbpf.ebpf.errors import IotbpfError

            raise IotbpfError("cannot write events file %s: %s" % (target, exc.strerror or exc)) from None
        self._close = target != "-"
        from iotbpf.ebpf import types as T

        for app in runtime.apps:
            for m in app.maps.values():
                if m.type in (T.BPF_MAP_TYPE_RINGBUF, T.BPF_MAP_TYPE_PERF_EVENT_ARRAY):
                    m.on_wakeup = self._drain_for(app.name)

    def _drain_for(self, app: str) -> Callable:
        def drain(m) -> None:
            now = self.runtime.clock.now_ns()
            if hasattr(m, "take_lost"):
                records = m.consume()
                for cpu, count in sorted(m.take_lost().items()):
                    self._write({"t_ns": now, "app": app, "map": m.name, "cpu": cpu, "lost": count})
            else:
                records = [(None, r) for r in m.consume()]
            for cpu, data in records:
                row = {"t_ns": now, "app": app, "map": m.name, "data": data.hex()}
                if cpu is not None:
                    row["cpu"] = cpu
                self._write(row)
        return drain

    def _write(self, row: dict) -> None:
        self.count += 1
        self._out.write(self._json.dumps(row, sort_keys=True) + "\n")

    def close(self) -> None:
        self._out.flush()
        if self._close:
            self._out.close()
