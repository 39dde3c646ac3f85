"""Wire reporting into a run: ``--mqtt``, ``--plot``, ``--plot-dir``, ``--report`` for simulate and co.

The command adds the options with :func:`add_arguments`, calls :func:`attach` once the node is
built and before it runs, and :meth:`Session.finish` with the result afterwards::

    session = attach(node, args, duration_ns)      # None when no reporting option was given
    result = node.simulate(duration_ns)
    if session is not None:
        session.finish(result, policies=None)      # writes files, flushes MQTT; returns paths

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
    """The reporting options shared by simulate, node and monitor."""
    group = parser.add_argument_group("reporting")
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
                       help="durable outbox database (default: ~/.cache/iotbpf/NAME.outbox.db)")
    group.add_argument("--plot", metavar="FILE.png", help="save all plots in one image")
    group.add_argument("--plot-dir", metavar="DIR", help="save one image per plot in DIR")
    group.add_argument("--report", metavar="FILE", help="save the numbers as FILE.json or FILE.csv")
    group.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                       help="time-series samples over the run (default %d)" % DEFAULT_SAMPLES)


def wanted(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) for name in ("mqtt", "plot", "plot_dir", "report"))


def default_outbox(node_name: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "iotbpf", node_name + ".outbox.db")


def scheduler_sample(scheduler, now_ns: int) -> dict | None:
    """A read-only snapshot of an energy scheduler at ``now_ns``: cumulative ledger per component
    and state, per-app energy, battery state of charge and predicted time to empty.

    Nothing that changes results is done (no flush, no battery step), so the run's results are
    unchanged: background time not yet settled in the ledger is added to a copy, in closed
    form, exactly as the ledger's own flush would add it.
    """
    if scheduler is None or getattr(scheduler, "ledger", None) is None:
        return None
    custom = getattr(scheduler, "sample", None)
    if callable(custom):
        return custom(now_ns)
    # Counted-but-not-yet-charged CPU bursts go to the ledger first, as the scheduler does before
    # any read of its own (it leaves the totals unchanged).
    apply_pending = getattr(scheduler, "apply_pending", None) or getattr(scheduler, "_apply_pending", None)
    if apply_pending is not None:
        apply_pending()
    ledger = scheduler.ledger
    ns_by_key = dict(ledger.ns)
    since = getattr(ledger, "_since", {})
    debt = getattr(ledger, "_debt", {})
    for comp, state in ledger.background.items():
        pending = now_ns - since.get(comp, now_ns) - debt.get(comp, 0)
        if pending > 0:
            ns_by_key[(comp, state)] = ns_by_key.get((comp, state), 0) + pending
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
                 report: str | None = None):
        self.runtime = runtime
        self.interval_ns = max(1, duration_ns // max(1, samples))
        self.end_ns = duration_ns
        # The scheduler's ledger counts from boot, so totals are its values as they are.
        self.recorder = Recorder(meta, max_samples=max(2 * samples, 16), origin="zero")
        self.publisher = publisher
        self.plot = plot
        self.plot_dir = plot_dir
        self.report_path = report
        self.samples_taken = 0
        self._last = None

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

    def finish(self, result=None, policies: list | None = None, flush_timeout: float = 15.0) -> list[str]:
        """Final sample, files and plots; flush MQTT. Returns the paths written.

        Raises RuntimeFailure (after writing every file) when reports could not be delivered;
        they stay in the outbox and go out with the next run of the same node.
        """
        self.take_sample()
        if result is not None and hasattr(result, "events_handled"):
            # Our sampling events are not the node's events: keep the printed count unchanged.
            result.events_handled -= self.samples_taken
        written = []
        report = self.recorder.report(policies=[_policy_row(p) for p in policies] if policies else None) \
            if len(self.recorder) else None
        if report is not None:
            if self.report_path:
                written.append(write_report(report, self.report_path))
            if self.plot or self.plot_dir:
                from iotbpf.report import plots

                if self.plot:
                    plots.plot_report(report, self.plot)
                    written.append(self.plot)
                if self.plot_dir:
                    written.extend(plots.plot_dir(report, self.plot_dir))
        elif self.report_path or self.plot or self.plot_dir:
            raise RuntimeFailure("no energy data to report: this node runs without an energy model")
        if self.publisher is not None:
            delivered = self.publisher.close(timeout=flush_timeout)
            if not delivered:
                left = self.publisher.undelivered
                raise RuntimeFailure("MQTT broker %r unreachable: %d reports kept in %s for the next run"
                                     % (self.publisher.url, left, self.publisher.outbox.path))
        return written


def _policy_row(row: dict) -> dict:
    """Accept the energy scheduler's compare() rows (average_current_a, ratio_to_oracle) too."""
    out = dict(row)
    if "avg_current_a" not in out and "average_current_a" in out:
        out["avg_current_a"] = out["average_current_a"]
    if "oracle_ratio" not in out and "ratio_to_oracle" in out:
        out["oracle_ratio"] = out["ratio_to_oracle"]
    return out


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
    plot = getattr(args, "plot", None)
    if plot and not plot.lower().endswith((".png", ".svg", ".pdf")):
        raise IotbpfError("--plot file must end in .png, .svg or .pdf: %s" % plot)
    report = getattr(args, "report", None)
    if report and not report.endswith((".json", ".csv")):
        raise IotbpfError("--report file must end in .json or .csv: %s" % report)
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
        publisher = Publisher(args.mqtt, name, outbox, clock="virtual", model=info.get("board") or "iotbpf node",
                              ca_certs=getattr(args, "mqtt_ca", None),
                              tls_insecure=bool(getattr(args, "mqtt_insecure", False))).start()
    session = Session(runtime, info, duration_ns, samples, publisher, plot, getattr(args, "plot_dir", None),
                      report)
    return session.start()
