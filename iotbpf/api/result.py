"""``SimulationResult``: what ``Node.simulate`` produced -- the deterministic summary, its text and
JSON, and the energy, battery, per-app and time-series views of it."""

from __future__ import annotations

import json
import os
from typing import Any

from iotbpf.ebpf.errors import IotbpfError

RESULT_VERSION = 1


class SimulationResult:
    """What ``Node.simulate`` produced.

    - ``energy`` (J), ``average_current_a``, ``lifetime_days`` (predicted, from the battery
      model), ``battery`` (dict: soc, drawn_mah, time_to_empty_s, ...), ``per_app``
      ({app: J}, BatteryStats-style attribution; "system" is energy no app caused);
    - ``summary`` (the full deterministic dict), ``hook("timer")`` (per-hook counts),
      ``faults``, ``text()`` (what ``iotbpf simulate`` prints), ``to_json()``, ``to_dict()``;
    - ``plot(path=None, view=None)`` draws power by component, states, battery and per-app
      energy over the run (matplotlib; returns the Figure); ``report`` is the same numbers as
      the ``--report`` JSON.

    The energy properties raise IotbpfError when the node ran without an energy model (no board).
    """

    def __init__(self, summary: dict, app_names: list, duration_ns: int, events_handled: int,
                 scheduler: Any = None, report: dict | None = None):
        self.summary = summary
        self.apps = app_names
        self.duration_ns = duration_ns
        self.events_handled = events_handled
        self._scheduler = scheduler  # the energy scheduler, for the text's energy lines
        self._report = report  # the time series (report.export.Recorder.report()), if sampled

    @property
    def faults(self) -> int:
        """Program faults during the run (every app, every hook)."""
        return self.summary["faults"]

    def hook(self, name: str) -> dict:
        """One hook's statistics: events, runs, instructions, faults, handler_ns."""
        return self.summary["hooks"][name]

    def to_dict(self) -> dict:
        """The whole result as JSON-able data, with a format version."""
        return {"version": RESULT_VERSION, "apps": self.apps, "duration_ns": self.duration_ns,
                "events_handled": self.events_handled, "summary": self.summary}

    def to_json(self) -> str:
        """to_dict() as JSON text (sorted keys: same seed, same bytes)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def text(self) -> str:
        """The human summary `iotbpf simulate` prints (same seed, same bytes)."""
        from iotbpf.kernel.clock import format_duration

        s = self.summary
        lines = ["node %d: %s, %s simulated, seed %d, %d events" % (
            s["node_id"], ", ".join(self.apps), format_duration(self.duration_ns), s["seed"],
            self.events_handled)]
        lines.append("%-14s %10s %10s %14s %8s %14s" % ("hook", "events", "runs", "instructions",
                                                          "faults", "handler time"))
        for name, h in s["hooks"].items():
            if h["events"] or h["runs"]:
                lines.append("%-14s %10d %10d %14d %8d %12.3f s" % (
                    name, h["events"], h["runs"], h["instructions"], h["faults"], h["handler_ns"] / 1e9))
        tx, rx = s["radio"]["tx"], s["radio"]["rx"]
        lines.append("packets sent %d, lost %d, rejected %d, deadline misses %d, queued now %d" % (
            tx["sent"], tx["lost"], tx["rejected"], tx["missed_deadlines"], tx["in_flight"]))
        lines.append("packets received %d, passed %d, dropped %d, missed (radio not listening) %d" % (
            rx["received"], rx["passed"], rx["dropped"], rx.get("missed", 0)))
        lines.append("faults %d, log lines %d" % (s["faults"], s["logs"]))
        throttled = s.get("throttled")
        if throttled:  # apps that hit their work bound (docs/runtime.md, "Work bounds")
            lines.append("throttled (out of work credit): %s" % ", ".join(
                "%s %d" % (name, n) for name, n in sorted(throttled["apps"].items())))
        for f in s["fault_records"][:5]:
            lines.append("  fault at %.3f s: %s/%s: %s" % (f["t_ns"] / 1e9, f["app"], f["hook"],
                                                           f["message"]))
        for e in s["events"]:
            lines.append("  %s at %.3f s: %s" % (e["event"], e["t_ns"] / 1e9, ", ".join(
                "%s=%s" % (k, e[k]) for k in sorted(e) if k not in ("event", "t_ns"))))
        if s.get("battery_dead_ns") is not None:
            lines.append("battery empty after %.2f days" % (s["battery_dead_ns"] / 86400e9))
        energy = s.get("energy")
        if energy is not None and self._scheduler is not None:
            from iotbpf.report.text import energy_summary_lines

            lines.extend(energy_summary_lines(self._scheduler.summary()))
        return "\n".join(lines) + "\n"

    def _energy(self) -> dict:
        energy = self.summary.get("energy")
        if energy is None:
            raise IotbpfError("this node ran without an energy model: give Node(..., board=...) "
                              "or a \"board\" in app.json")
        return energy

    @property
    def energy(self) -> float:
        """Energy used over the run, in joules (all components of the board)."""
        return float(self._energy()["energy_j"])

    @property
    def average_current_a(self) -> float:
        """Average current drawn from the battery, in amperes."""
        return float(self._energy()["average_current_a"])

    @property
    def lifetime_days(self) -> float | None:
        """Predicted battery lifetime from boot, in days (None: unlimited, e.g. with harvesting)."""
        value = self._energy().get("lifetime_days")
        return None if value is None else float(value)

    @property
    def battery(self) -> dict:
        """The battery model's state at the end: model, capacity_mah, soc, drawn_mah, dead, ..."""
        return dict(self._energy().get("battery") or {})

    @property
    def per_app(self) -> dict:
        """Energy per app in joules, largest first ("system" = energy no app caused)."""
        apps = self._energy().get("apps") or {}
        return dict(sorted(apps.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def report(self) -> dict:
        """The run as the ``--report`` JSON dict (time series of power, states, battery, apps)."""
        if self._report is None:
            raise IotbpfError("this result has no time series: simulate with samples > 0 on a node "
                              "with an energy model")
        return self._report

    def plot(self, path: str | os.PathLike | None = None, view: str | list | None = None) -> Any:
        """Plot the run: ``view`` one of "power", "states", "soc", "apps" (or a list; default all)
        into one figure, saved to ``path`` (.png/.svg/.pdf) when given. Returns the Figure."""
        from iotbpf.report import plots

        report = self.report
        views = [view] if isinstance(view, str) else view
        known = plots.available_views(report)
        for v in views or ():
            if v not in known:
                raise IotbpfError("unknown plot view %r (available: %s)" % (v, ", ".join(known)))
        return plots.plot_report(report, path, views)

    def save_report(self, path: str | os.PathLike) -> str:
        """Write the ``--report`` numbers as FILE.json or FILE.csv; returns the path."""
        from iotbpf.report.export import write_report

        if not os.fspath(path).endswith((".json", ".csv")):
            raise IotbpfError("report file must end in .json or .csv: %s" % os.fspath(path))
        return write_report(self.report, path)
