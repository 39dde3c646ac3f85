"""Wire reporting into a run: ``--mqtt``, ``--plot``, ``--plot-dir``, ``--report`` for simulate and co.

The command adds the options with :func:`add_arguments`, calls :func:`attach` once the node is
built and before it runs, and :meth:`Session.finish` with the result afterwards::

    session = attach(node, args, duration_ns)      # None when no reporting option was given
    result = node.simulate(duration_ns)
    if session is not None:
        session.finish(result)      # writes files, flushes MQTT; returns paths

While the node runs, a sampling event in the runtime's own event queue (every
``duration / --samples``) reads the energy scheduler's ledger, battery and per-app
attribution -- reading only, so the simulation's results do not change -- and feeds a
:class:`~iotbpf.report.export.Recorder` and, with ``--mqtt``, publishes battery, energy and apps
reports through the durable outbox. This module must never change what the node computes.
"""

from __future__ import annotations

import argparse
import os

from iotbpf.ebpf.errors import IotbpfError, RuntimeFailure
from iotbpf.report.export import Recorder, write_report

DEFAULT_SAMPLES = 240
MAX_SAMPLES = 100000  # more points than any plot shows; each one is a snapshot of the running node
SYSTEM = "system"   # the attribution's name for energy no app caused


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The reporting options shared by simulate, node and monitor (the MQTT ones: add_mqtt_arguments)."""
    group = parser.add_argument_group("reporting")
    add_mqtt_arguments(group)
    group.add_argument("--plot", metavar="FILE.png", help="save all plots in one image")
    group.add_argument("--plot-dir", metavar="DIR", help="save one image per plot in DIR")
    group.add_argument("--report", metavar="FILE",
                       help="save the document as FILE.json, or FILE.csv with a FILE.meta.json sidecar")
    group.add_argument("--html", metavar="FILE.html",
                       help="save a self-contained interactive report (timeline, breakdowns; opens offline)")
    group.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                       help="time-series samples over the run (default: %(default)s)")


def add_mqtt_arguments(group) -> None:
    """--mqtt, --mqtt-ca, --mqtt-insecure, --node-name, --outbox: the same names in every command."""
    group.add_argument("--mqtt", metavar="URL",
                       help="publish reports to an MQTT broker: mqtt://[user[:password]@]host[:port] "
                            "or mqtts://... (reports wait in a durable outbox while it is unreachable)")
    group.add_argument("--mqtt-ca", metavar="FILE",
                       help="CA certificate that signed the broker's (mqtts://; default: the system's CAs)")
    group.add_argument("--mqtt-insecure", action="store_true",
                       help="mqtts:// without checking the broker's certificate (testing only)")
    group.add_argument("--node-name", metavar="NAME",
                       help="node name in MQTT topics iotbpf/NAME/... (default: APP-NODE_ID)")
    group.add_argument("--outbox", metavar="FILE",
                       help="durable outbox database (default: $XDG_CACHE_HOME or ~/.cache, "
                            "iotbpf/NAME.outbox.db)")


def wanted(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) for name in ("mqtt", "plot", "plot_dir", "report", "html", "json"))


def default_outbox(node_name: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "iotbpf", node_name + ".outbox.db")


def scheduler_sample(scheduler, now_ns: int) -> dict | None:
    """A read-only snapshot of an energy scheduler at ``now_ns``: cumulative ledger per component
    and state, per-app energy, battery state of charge and predicted time to empty.

    Nothing that changes results is done (no flush, no battery step): the ledger's ``peek``
    adds the background time not yet settled to a copy, exactly as its own flush would.
    """
    if scheduler is None or getattr(scheduler, "ledger", None) is None:
        return None
    custom = getattr(scheduler, "sample", None)
    if callable(custom):
        return custom(now_ns)
    ledger = scheduler.ledger
    ns_by_key = ledger.peek(now_ns)
    components: dict[str, dict] = {}
    total = 0.0
    for (comp, state), ns in sorted(ns_by_key.items()):
        model = ledger.models[comp]
        joules = model.energy_j(state, ns)
        entry = components.setdefault(comp, {"energy_j": 0.0, "states_ns": {}, "states_j": {}})
        entry["energy_j"] += joules
        entry["states_ns"][state] = ns
        entry["states_j"][state] = joules
        total += joules
    apps = {str(app): joules for app, joules in scheduler.attr.per_app_j().items() if str(app) != SYSTEM}
    apps[SYSTEM] = total - sum(apps.values())   # the remainder, as the attribution defines it
    battery = scheduler.battery
    return {"t_ns": now_ns, "components": components, "apps": apps,
            "soc_percent": 100.0 * battery.soc(), "time_to_empty_s": battery.time_to_empty_s()}


class Session:
    """Samples one running node and delivers reports, plots and files at the end."""

    def __init__(self, runtime, meta: dict, duration_ns: int, samples: int = DEFAULT_SAMPLES,
                 publisher=None, plot: str | None = None, plot_dir: str | None = None,
                 report: str | None = None, html: str | None = None, timeline: bool = False):
        self.runtime = runtime
        self.interval_ns = max(1, duration_ns // max(1, samples))
        self.end_ns = duration_ns
        # The scheduler's ledger counts from boot, so totals are its values as they are.
        self.recorder = Recorder(meta, max_samples=max(2 * samples, 16), origin="zero")
        self.publisher = publisher
        self.plot = plot
        self.plot_dir = plot_dir
        self.report_path = report
        self.html = html
        self.samples_taken = 0
        self.last_document = None
        self._last = None
        self._timeline = timeline or bool(html)
        self._events_taken = False
        if self._timeline:
            self._watch_bursts()

    def _watch_bursts(self) -> None:
        """Record each radio burst (start, length, apps) for the timeline: a read-only wrapper around
        the energy scheduler's burst, installed only when a timeline is asked for (--html)."""
        scheduler = getattr(self.runtime, "scheduler", None)
        burst = getattr(scheduler, "_burst", None)
        if burst is None:
            return
        recorder = self.recorder
        last = {}   # the burst the radio is still in: a packet sent while it is awake joins it

        def watched(t, packets):
            apps = sorted({str(q[3]) for q in packets})
            count = len(packets)
            before = len(scheduler.done)
            burst(t, packets)
            if not count or len(scheduler.done) <= before:
                return
            end = scheduler.done[-1][0]
            previous = last.get("event")
            if previous is not None and t <= last["end"]:
                last["packets"] += count
                last["apps"].update(apps)
                previous["duration_ns"] = max(last["end"], end) - previous["t_ns"]
                previous["app"] = ",".join(sorted(last["apps"]))
                previous["detail"] = "%d packets" % last["packets"]
                last["end"] = max(last["end"], end)
                return
            detail = "%d packet%s" % (count, "" if count == 1 else "s")
            recorder.event(t, "radio burst", end - t, ",".join(apps), detail)
            newest = recorder._events[-1] if recorder._events else None
            if newest is not None and newest["kind"] == "radio burst" and newest["t_ns"] == t:
                last.update(event=newest, end=end, packets=count, apps=set(apps))

        scheduler._burst = watched

    def start(self) -> Session:
        """Schedule the first sample (at boot time) in the node's event queue."""
        self.runtime.queue.push(self.runtime.clock.now_ns(), self._on_sample, None)
        return self


    def _on_sample(self, now_ns: int, _arg) -> None:
        self.samples_taken += 1
        self.take_sample()
        nxt = now_ns + self.interval_ns
        if nxt < self.end_ns:
            self.runtime.queue.push(nxt, self._on_sample, None)

    def take_sample(self) -> None:
        snap = scheduler_sample(getattr(self.runtime, "scheduler", None), self.runtime.clock.now_ns())
        if snap is None:
            return
        if self._last is not None and snap["t_ns"] < self._last["t_ns"]:
            return
        self.recorder.sample(snap["t_ns"], snap["components"], snap["soc_percent"],
                             snap["time_to_empty_s"], snap["apps"])
        if self.publisher is not None:
            self._publish(snap)
        self._last = snap

    def _publish(self, snap: dict) -> None:
        last = self._last
        energy = sum(c["energy_j"] for c in snap["components"].values())
        power = 0.0
        comp_power = {}
        if last is not None and snap["t_ns"] > last["t_ns"]:
            dt = (snap["t_ns"] - last["t_ns"]) / 1e9
            before = {n: c["energy_j"] for n, c in last["components"].items()}
            comp_power = {n: (c["energy_j"] - before.get(n, 0.0)) / dt for n, c in snap["components"].items()}
            power = sum(comp_power.values())
        tte = snap["time_to_empty_s"]
        elapsed = snap["t_ns"] / 1e9
        ts = snap["t_ns"]
        self.publisher.report("battery", {
            "soc_percent": round(snap["soc_percent"], 4),
            "lifetime_days": None if tte is None else (elapsed + tte) / 86400.0,
            "time_to_empty_s": tte, "power_w": power}, ts_ns=ts)
        self.publisher.report("energy", {
            "power_w": power, "energy_j": energy,
            "components": {n: {"energy_j": c["energy_j"], "power_w": comp_power.get(n)}
                           for n, c in sorted(snap["components"].items())}}, ts_ns=ts)
        from iotbpf.report.apps import live_data

        self.publisher.report("apps", live_data(self.runtime, snap["apps"], energy), ts_ns=ts)

    def document(self, result=None) -> dict | None:
        """The node-result document of the run so far. A node without an energy model has its counters
        (``run``) and a two-row series of nulls, and null totals (None without a result either)."""
        summary = getattr(result, "summary", None) or {}
        if not len(self.recorder):
            if result is None or not hasattr(result, "events_handled"):
                return None
            self.recorder.meta["energy_model"] = False
            self.recorder.sample(0, {})
            self.recorder.sample(self.runtime.clock.now_ns(), {})
        if self._timeline and not self._events_taken:
            self._events_taken = True
            self._scheduler_events(summary)
        run = None
        if result is not None and hasattr(result, "events_handled"):
            run = dict(summary, events_handled=result.events_handled)
        return self.recorder.report(died_ns=getattr(self.runtime, "dead_at_ns", None), run=run)

    def _scheduler_events(self, summary: dict) -> None:
        """Transmit requests, listen windows, faults and the battery's death, from what the node kept."""
        rec = self.recorder
        scheduler = getattr(self.runtime, "scheduler", None)
        for arrival, _deadline, nbytes, app in getattr(scheduler, "trace_tx", ()):
            rec.event(arrival, "send request", None, app, "%d bytes" % nbytes)
        for start, duration, app in getattr(scheduler, "trace_listen", ()):
            rec.event(start, "listen window", duration, app)
        for fault in summary.get("fault_records", ()):
            rec.event(fault["t_ns"], "fault", None, fault.get("app"),
                      "%s: %s" % (fault.get("hook"), fault["message"]))
        for event in summary.get("events", ()):
            rec.event(event["t_ns"], str(event.get("event", "event")), None, event.get("app"),
                      ", ".join("%s=%s" % (k, event[k]) for k in sorted(event) if k not in ("event", "t_ns", "app")))
        dead = getattr(self.runtime, "dead_at_ns", None)
        if dead is not None:
            rec.event(dead, "battery empty", None, None, "the node stopped")
        rec.sort_events()

    def finish(self, result=None, flush_timeout: float = 15.0) -> list[str]:
        """Final sample, files and plots; flush MQTT. Returns the paths written.

        Raises RuntimeFailure (after writing every file) when reports could not be delivered;
        they stay in the outbox and go out with the next run of the same node.
        """
        self.take_sample()
        if result is not None and hasattr(result, "events_handled"):
            # Our sampling events are not the node's events: keep the printed count unchanged.
            result.events_handled -= self.samples_taken
        written = []
        report = self.document(result)
        self.last_document = report
        if report is not None and report["meta"].get("energy_model") is False:
            report = None
        if report is not None:
            written.extend(write_outputs(report, self.report_path, self.plot, self.plot_dir, self.html))
        elif self.report_path or self.plot or self.plot_dir or self.html:
            raise RuntimeFailure("no energy data to report: this node runs without an energy model")
        if self.publisher is not None:
            delivered = self.publisher.close(timeout=flush_timeout)
            if not delivered:
                left = self.publisher.undelivered
                raise RuntimeFailure("MQTT broker %r unreachable: %d reports kept in %s for the next run"
                                     % (self.publisher.url, left, self.publisher.outbox.path))
        return written


def write_outputs(doc: dict, report: str | None = None, plot: str | None = None, plot_dir: str | None = None,
                  html: str | None = None) -> list[str]:
    """Write a document of any kind as --report, --plot, --plot-dir and --html ask; returns the paths."""
    written = []
    if report:
        written.append(write_report(doc, report))
    if plot or plot_dir:
        from iotbpf.report import plots

        if plot:
            plots.plot_report(doc, plot)
            written.append(plot)
        if plot_dir:
            written.extend(plots.plot_dir(doc, plot_dir))
    if html:
        from iotbpf.report import html as html_report

        written.append(html_report.write_html(doc, html))
    return written


def check_output_args(args: argparse.Namespace) -> tuple:
    """(--plot, --report, --html) after checking their file suffixes."""
    plot = getattr(args, "plot", None)
    if plot and not plot.lower().endswith((".png", ".svg", ".pdf")):
        raise IotbpfError("--plot file must end in .png, .svg or .pdf: %s" % plot)
    report = getattr(args, "report", None)
    if report and not report.endswith((".json", ".csv")):
        raise IotbpfError("--report file must end in .json or .csv: %s" % report)
    html = getattr(args, "html", None)
    if html and not html.lower().endswith((".html", ".htm")):
        raise IotbpfError("--html file must end in .html: %s" % html)
    return plot, report, html


def attach(node, args: argparse.Namespace, duration_ns: int, meta: dict | None = None) -> Session | None:
    """Start reporting for ``node`` (an api.Node or a kernel Runtime) as ``args`` ask; None if not asked."""
    if not wanted(args):
        return None
    runtime = node
    if not hasattr(node, "queue"):
        runtime = node.build()
    app_names = [a.name for a in getattr(runtime, "apps", [])]
    info = {"app": ",".join(app_names) or None, "node_id": getattr(runtime, "node_id", 0),
            "seed": getattr(runtime, "seed", None), "clock": "virtual", "duration_ns": duration_ns}
    scheduler = getattr(runtime, "scheduler", None)
    if scheduler is not None:
        info["policy"] = getattr(scheduler, "policy", None)
        board = getattr(scheduler, "board", None)
        info["board"] = getattr(board, "name", None)
    info.update(meta or {})
    name = getattr(args, "node_name", None) or "%s-%s" % (app_names[0] if app_names else "node",
                                                          info["node_id"])
    info["node"] = name
    plot, report, html = check_output_args(args)
    samples = getattr(args, "samples", None)
    if samples is None:
        samples = DEFAULT_SAMPLES
    if not 2 <= samples <= MAX_SAMPLES:
        raise IotbpfError("--samples must be between 2 and %d, got %d" % (MAX_SAMPLES, samples))
    publisher = None
    if getattr(args, "mqtt", None):
        from iotbpf.report.mqtt import Publisher

        outbox = getattr(args, "outbox", None) or default_outbox(name)
        os.makedirs(os.path.dirname(os.path.abspath(outbox)), exist_ok=True)
        apps = tuple(app_names) + (SYSTEM,) if scheduler is not None else ()
        publisher = Publisher(args.mqtt, name, outbox, clock="virtual", model=info.get("board") or "iotbpf node",
                              announce=("battery", "power", "energy", "lifetime") if scheduler is not None else (),
                              apps=apps,
                              ca_certs=getattr(args, "mqtt_ca", None),
                              tls_insecure=bool(getattr(args, "mqtt_insecure", False)))
        # A run's virtual time starts at 0 again: every run is a new stream (docs/mqtt.md), so a
        # rerun after a crash is never mistaken for the same reports; what a killed run left in
        # the outbox is still delivered under its own stream id.
        publisher.outbox.new_stream()
        publisher.start()
    session = Session(runtime, info, duration_ns, samples, publisher, plot, getattr(args, "plot_dir", None),
                      report, html)
    return session.start()
