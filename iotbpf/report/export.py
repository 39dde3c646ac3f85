"""Report documents: record a run as time series (Recorder), build every report kind, write and read
JSON and CSV. Plots, HTML, JSON and CSV all read these documents, so the numbers agree everywhere;
the kinds and their conventions are in docs/reports.md.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

from iotbpf.ebpf import boundedjson
from iotbpf.ebpf.errors import IotbpfError, LoadError
from iotbpf.report.schema import VERSION, schema_name, validate

NS_PER_S = 1_000_000_000
# States in which a component does no work: everything else counts toward its duty cycle.
IDLE_STATES = frozenset(("sleep", "deep_sleep", "light_sleep", "hibernation", "off", "idle", "standby",
                         "assoc_sleep"))


def _header(kind: str, meta: dict) -> dict:
    return {"schema": schema_name(kind), "version": VERSION, "meta": meta}


class Recorder:
    """Builds a node-result document from cumulative samples taken during a run (virtual or real time).

    ``sample(t_ns, components, ...)`` with ``components = {name: {"energy_j": cumulative J,
    "states_ns": {state: cumulative ns}, "states_j": {state: cumulative J} (optional)}}``,
    ``apps = {name: cumulative J}``, ``soc_percent`` and ``time_to_empty_s`` (None when
    unknown). Samples must come in time order. Totals (per component, state and app) are the
    change since the first sample, or with ``origin="zero"`` the last sample's values as given
    (cumulative since the run began, e.g. including what booting cost at time 0).
    ``event(t_ns, kind, ...)`` adds a timeline event (radio burst, fault, death ...).
    """

    def __init__(self, meta: dict | None = None, max_samples: int = 2000, origin: str = "first",
                 max_events: int = 200000):
        if origin not in ("first", "zero"):
            raise ValueError("origin must be 'first' or 'zero'")
        self.meta = dict(meta or {})
        self.meta.setdefault("clock", "virtual")
        self.meta.setdefault("simulated", self.meta["clock"] == "virtual")
        self.origin = origin
        self.max_samples = max_samples
        self.max_events = max_events
        self.events_dropped = 0
        self._samples: list[dict] = []
        self._events: list[dict] = []

    def __len__(self) -> int:
        return len(self._samples)

    def sample(self, t_ns: int, components: dict, soc_percent: float | None = None,
               time_to_empty_s: float | None = None, apps: dict | None = None) -> None:
        if self._samples and t_ns < self._samples[-1]["t_ns"]:
            raise ValueError("samples must be in time order")
        if self._samples and t_ns == self._samples[-1]["t_ns"]:
            self._samples.pop()      # the later sample of the same instant wins
        self._samples.append({
            "t_ns": int(t_ns),
            "components": {name: {"energy_j": float(c.get("energy_j", 0.0)),
                                  "states_ns": {s: int(ns) for s, ns in c.get("states_ns", {}).items()},
                                  "states_j": {s: float(j) for s, j in c.get("states_j", {}).items()}}
                           for name, c in components.items()},
            "soc_percent": _num_or_none(soc_percent),
            "time_to_empty_s": _num_or_none(time_to_empty_s),
            "apps": {name: float(e) for name, e in (apps or {}).items()},
        })
        if len(self._samples) > self.max_samples:
            self._thin()

    def event(self, t_ns: int, kind: str, duration_ns: int | None = None, app: str | None = None,
              detail: str | None = None) -> None:
        """A timeline event; past ``max_events`` they are counted in ``events_dropped`` instead."""
        if len(self._events) >= self.max_events:
            self.events_dropped += 1
            return
        self._events.append({"t_ns": int(t_ns), "kind": kind, "duration_ns": duration_ns,
                             "app": None if app is None else str(app), "detail": detail})

    def sort_events(self) -> None:
        """Put the timeline events in time order (sources add them in batches)."""
        self._events.sort(key=lambda e: e["t_ns"])

    def _thin(self) -> None:
        """Keep the first sample and every second one after it: cumulative values lose nothing."""
        kept = self._samples[::2]
        if kept[-1] is not self._samples[-1]:
            kept.append(self._samples[-1])
        self._samples = kept

    def report(self, died_ns: int | None = None, run: dict | None = None) -> dict:
        """The node-result document for everything sampled so far (``run``: the node's counters)."""
        if not self._samples:
            raise IotbpfError("nothing was recorded: no samples")
        first, last = self._samples[0], self._samples[-1]
        t0 = first["t_ns"]
        if self.origin == "zero":
            first = {"components": {}, "apps": {}}
        names = sorted({n for s in self._samples for n in s["components"]})
        t_ns = [s["t_ns"] - t0 for s in self._samples]
        series: dict[str, list] = {"t_s": [t / NS_PER_S for t in t_ns], "t_ns": t_ns,
                                   "soc_percent": [s["soc_percent"] for s in self._samples],
                                   "time_to_empty_s": [s["time_to_empty_s"] for s in self._samples]}
        for n in names:
            series["power_w." + n] = [None]
            series["state." + n] = [None]
            series["duty_percent." + n] = [None]
        for prev, cur in zip(self._samples, self._samples[1:]):
            dt = (cur["t_ns"] - prev["t_ns"]) / NS_PER_S
            for n in names:
                a = prev["components"].get(n, {"energy_j": 0.0, "states_ns": {}})
                b = cur["components"].get(n, {"energy_j": 0.0, "states_ns": {}})
                series["power_w." + n].append((b["energy_j"] - a["energy_j"]) / dt if dt > 0 else 0.0)
                series["state." + n].append(_top_state(a, b))
                series["duty_percent." + n].append(_duty(a, b, cur["t_ns"] - prev["t_ns"]))
        duration_ns = t_ns[-1]
        duration = duration_ns / NS_PER_S
        components = {}
        duty = {}
        for n in names:
            comp = last["components"].get(n, {"energy_j": 0.0, "states_ns": {}})
            base = first["components"].get(n, {"energy_j": 0.0, "states_ns": {}})
            states = {}
            busy_ns = 0
            for s, ns in sorted(comp["states_ns"].items()):
                dns = ns - base["states_ns"].get(s, 0)
                states[s] = {"time_s": dns / NS_PER_S, "time_ns": dns}
                if s in comp.get("states_j", {}):
                    states[s]["energy_j"] = comp["states_j"][s] - base.get("states_j", {}).get(s, 0.0)
                if s not in IDLE_STATES:
                    busy_ns += dns
            components[n] = {"energy_j": comp["energy_j"] - base["energy_j"], "states": states}
            if states and duration_ns > 0:
                duty[n] = min(100.0, 100.0 * busy_ns / duration_ns)
        apps = {a: {"energy_j": e - first["apps"].get(a, 0.0)} for a, e in sorted(last["apps"].items())}
        total = sum(c["energy_j"] for c in components.values())
        tte = last["time_to_empty_s"]
        died = None if died_ns is None else (died_ns - t0) / NS_PER_S
        if died is not None:
            lifetime = died
        else:
            lifetime = None if tte is None else duration + tte
        doc = _header("node-result", dict(self.meta))
        doc.update({
            "duration_s": duration, "duration_ns": duration_ns,
            "series": series,
            "components": components,
            "apps": apps,
            "battery": {"soc_percent": last["soc_percent"], "time_to_empty_s": tte, "lifetime_s": lifetime,
                        "died_s": died},
            "totals": {"energy_j": total, "avg_power_w": total / duration if duration > 0 else 0.0,
                       "duty_cycle_percent": duty} if names else
            {"energy_j": None, "avg_power_w": None, "duty_cycle_percent": {}},   # no energy model: unknown
        })
        if self._events:
            doc["events"] = [{"t_s": (e["t_ns"] - t0) / NS_PER_S, "t_ns": e["t_ns"] - t0, "kind": e["kind"],
                              "duration_s": None if e["duration_ns"] is None else e["duration_ns"] / NS_PER_S,
                              "app": e["app"], "detail": e["detail"]} for e in self._events]
        if run is not None:
            doc["run"] = si_summary(run)
            if self.events_dropped:
                doc["run"]["timeline_events_dropped"] = self.events_dropped
        return doc


def duty_cycle_percent(components: dict, duration_ns: int) -> dict:
    """Percent of ``duration_ns`` each component spent outside its idle states, from a scheduler
    summary's ``components`` ({name: {"states": {state: {"ns": ...}}}})."""
    if duration_ns <= 0:
        return {}
    return {name: min(100.0, 100.0 * sum(v["ns"] for s, v in entry["states"].items() if s not in IDLE_STATES)
                      / duration_ns) for name, entry in components.items()}


def si_summary(value):
    """A node's counters in the family's units: every ``*_ns`` integer gains a ``*_s`` float beside it,
    a state of charge as a 0-1 fraction ("soc") becomes ``soc_percent``; energy blocks are left out
    (the document's components/apps/battery hold them)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "energy":
                continue
            if key == "soc" and isinstance(item, (int, float)):
                out["soc_percent"] = 100.0 * item
                continue
            out[key] = si_summary(item)
            if key.endswith("_ns") and isinstance(item, int) and not isinstance(item, bool):
                out[key[:-3] + "_s"] = item / NS_PER_S
        return out
    if isinstance(value, list):
        return [si_summary(v) for v in value]
    return value


def _top_state(before: dict, after: dict):
    """The highest-power state a component entered between two samples (by its energy per ns;
    by time when the sample has no per-state energy); transitions ("a>b") do not count."""
    best, best_key = None, None
    for state, ns in sorted(after["states_ns"].items()):
        dns = ns - before["states_ns"].get(state, 0)
        if dns <= 0 or ">" in state:
            continue
        if state in after.get("states_j", {}):
            dj = after["states_j"][state] - before.get("states_j", {}).get(state, 0.0)
            key = (1, dj / dns)
        else:
            key = (0, dns)
        if best_key is None or key > best_key:
            best, best_key = state, key
    return best


def _duty(before: dict, after: dict, dt_ns: int):
    """Percent of an interval a component spent outside its idle states (None without state times)."""
    if not after["states_ns"] or dt_ns <= 0:
        return None
    busy = sum(ns - before["states_ns"].get(s, 0) for s, ns in after["states_ns"].items() if s not in IDLE_STATES)
    return min(100.0, max(0.0, 100.0 * busy / dt_ns))


def _num_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def series_components(doc: dict, prefix: str = "power_w.") -> list[str]:
    """The component (or app) names of a document's ``prefix`` series, sorted."""
    return sorted(k[len(prefix):] for k in doc.get("series", {}) if k.startswith(prefix))


# --------------------------------------------------------------------------- the other kinds

def comparison_document(rows: list[dict], duration_ns: int, meta: dict, nodes: dict | None = None) -> dict:
    """A comparison document from rows of ``comparison_rows`` and per-policy node results."""
    doc = _header("comparison", dict(meta, clock="virtual", simulated=True))
    doc.update({"duration_s": duration_ns / NS_PER_S, "duration_ns": int(duration_ns), "policies": rows})
    if nodes:
        doc["nodes"] = nodes
    return doc


def comparison_rows(schedulers: dict, oracle_rows: list[dict], dead_ns: dict) -> list[dict]:
    """Truthful policy rows: each policy's energy over its own span with that span, its average power
    and the power ratio to the oracle (labelled as such), and the time its battery died, if it did.

    ``oracle_rows`` are the energy scheduler's ``compare()`` rows (for their oracle and ratios);
    ``dead_ns`` maps a policy to when its battery died (None when it lasted)."""
    out = []
    for row in oracle_rows:
        name = row["policy"]
        oracle = name == "oracle"
        sched = schedulers.get(name[:-len(" (live)")] if name.endswith(" (live)") else name)
        if oracle:
            span_ns = max(s.elapsed_ns() for s in schedulers.values())
        else:
            span_ns = sched.elapsed_ns()
        died = None if oracle else dead_ns.get(sched.policy if sched is not None else name)
        span = span_ns / NS_PER_S
        life_days = row.get("lifetime_days")
        out.append({
            "policy": name, "oracle": oracle, "duration_s": span, "duration_ns": int(span_ns),
            "energy_j": float(row["energy_j"]),
            "avg_power_w": float(row["energy_j"]) / span if span > 0 else None,
            "avg_current_a": _num_or_none(row.get("average_current_a")),
            "lifetime_s": None if died is not None and life_days is None else
            (died / NS_PER_S if died is not None else (None if life_days is None else life_days * 86400.0)),
            "died_s": None if died is None else died / NS_PER_S,
            "deadline_misses": int(row.get("deadline_misses") or 0),
            "rx_missed": int(row.get("rx_missed") or 0),
            "power_ratio_to_oracle": _num_or_none(row.get("ratio_to_oracle")),
            "oracle_gap": _num_or_none(row.get("gap")) if oracle else None,
            "oracle_exact": bool(row.get("exact")) if oracle and "exact" in row else None,
        })
    return out


def fleet_document(report: dict) -> dict:
    """The fleet document of ``iotbpf.fleet.run_fleet``'s result (its numbers, in the family's units)."""
    spec = report["spec"]
    duration = float(spec["duration_s"])
    stats = report["stats"]
    life = {k: (None if v is None else v * 86400.0) for k, v in stats["lifetime_days"].items()}
    first = stats.get("first_death")
    nodes = []
    for n in report["nodes"]:
        soc = [None if s is None else 100.0 * s for s in n.get("soc") or []]
        nodes.append({
            "index": n["index"], "name": n["name"], "app": n["app"], "board": n["board"], "policy": n["policy"],
            "seed": n["seed"], "params": dict(n.get("params") or {}),
            "energy_j": n["energy_j"], "avg_current_a": n["average_current_a"],
            "lifetime_s": None if n.get("lifetime_days") is None else n["lifetime_days"] * 86400.0,
            "died_s": None if n.get("died_at_days") is None else n["died_at_days"] * 86400.0,
            "deadline_misses": int(n["deadline_misses"]), "packets_sent": int(n["packets_sent"]),
            "packets_lost": int(n["packets_lost"]), "faults": int(n["faults"]),
            "components_energy_j": dict(n.get("components_j") or {}), "apps_energy_j": dict(n.get("apps_j") or {}),
            "soc_percent": soc})
    samples = int(report.get("soc_samples") or 0)
    series: dict[str, list] = {"t_s": [duration * (i + 1) / samples for i in range(samples)]}
    for q in (5, 50, 95):
        column = []
        for i in range(samples):
            values = sorted(n["soc_percent"][i] for n in nodes
                            if i < len(n["soc_percent"]) and n["soc_percent"][i] is not None)
            column.append(_percentile(values, q) if values else None)
        series["soc_percent_p%d" % q] = column
    doc = _header("fleet", {"clock": "virtual", "simulated": True, "name": spec.get("name"),
                            "backend": report.get("backend"), "workers": report.get("workers"),
                            "wall_s": report.get("seconds")})
    doc.update({
        "duration_s": duration, "duration_ns": int(round(duration * NS_PER_S)), "spec": spec,
        "stats": {"nodes": stats["nodes"], "dead_nodes": stats["dead_nodes"], "lifetime_s": life,
                  "first_death": None if first is None else {"node": first["node"], "died_s": first["days"] * 86400.0},
                  "energy_j": stats["energy_j_total"], "deadline_misses": stats["deadline_misses_total"],
                  "faults": stats["faults_total"]},
        "series": series, "nodes": nodes})
    return doc


def _percentile(sorted_values: list, q: float) -> float:
    position = (len(sorted_values) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


MONITOR_BYTE_COUNTERS = ("net_tx_bytes", "net_rx_bytes", "disk_read_bytes", "disk_write_bytes")


def monitor_document(summary: dict, timeline: list, host: str, model_matches_host: bool) -> dict:
    """The monitor document of a live ``iotbpf monitor`` run (``LinuxMonitor.summary()`` and the
    per-interval (end time s, {app: W}) timeline)."""
    apps = []
    for a in summary["apps"]:
        row = {"app": a["app"], "energy_j": a["energy_j"], "cpu_s": a["cpu_s"], "wakeups": int(a["wakeups"]),
               "processes": int(a.get("processes", 0)), "source": a.get("source", "")}
        for counter in MONITOR_BYTE_COUNTERS:  # the eBPF backend counts these in the kernel
            if a.get(counter) is not None:
                row[counter] = int(a[counter])
        apps.append(row)
    series: dict[str, list] = {"t_s": [t - timeline[0][0] for t, _ in timeline] if timeline else []}
    names = sorted({n for _, watts in timeline for n in watts})
    for name in names:
        series["power_w." + name] = [watts.get(name) for _, watts in timeline]
    doc = _header("monitor", {"clock": "real", "simulated": False, "host": host,
                              "model": summary["model"]["name"], "model_matches_host": model_matches_host,
                              "group_by": summary.get("group_by"), "notes": list(summary.get("notes", []))})
    doc.update({"duration_s": float(summary["seconds"]), "apps": apps,
                "totals": {"estimate_j": summary["estimate_j"], "measured_j": summary["measured_j"],
                           "error_percent": summary["error_pct"]},
                "series": series,
                "run": {k: v for k, v in summary.items() if k not in ("apps", "notes", "mqtt")}})
    return doc


def app_usage_document(apps: list[dict], source: str, duration_s: float | None, clock: str = "real",
                       simulated: bool = False, events: list | None = None, **meta) -> dict:
    """An app-usage document: ``apps`` rows with at least ``app`` and ``energy_j`` (see the schema)."""
    doc = _header("app-usage", dict(meta, clock=clock, simulated=simulated, source=source))
    doc.update({"duration_s": duration_s, "apps": apps})
    if events:
        doc["events"] = events
    return doc


def android_app_usage(comparison: dict, source: str) -> dict:
    """The app-usage document of ``iotbpf.platforms.android`` attribution (``.to_dict()``)."""
    apps = [{"app": r["name"], "uid": r.get("uid"), "energy_j": None, "charge_mah": r.get("ours_mah"),
             "reference_charge_mah": r.get("android_mah")} for r in comparison["rows"]]
    return app_usage_document(apps, "android-checkin", comparison.get("duration_s"), clock="real",
                              simulated=False, power_profile=source, notes=list(comparison.get("notes", [])))


# --------------------------------------------------------------------------- files

def write_report(doc: dict, path: str | os.PathLike) -> str:
    """Write a document as JSON (``.json``) or a typed CSV table plus ``.meta.json`` sidecar (``.csv``)."""
    path = os.fspath(path)
    validate(doc)
    if path.endswith(".json"):
        _write(path, json.dumps(doc, indent=1, sort_keys=True, allow_nan=False) + "\n")
    elif path.endswith(".csv"):
        columns, rows, rest = csv_table(doc)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c[0] for c in columns])
        for row in rows:
            writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
        _write(path, out.getvalue())
        rest = dict(rest, csv={"file": os.path.basename(path),
                               "columns": [{"name": n, "unit": u, "type": t} for n, u, t in columns]})
        _write(sidecar_path(path), json.dumps(rest, indent=1, sort_keys=True, allow_nan=False) + "\n")
    else:
        raise IotbpfError("report file must end in .json or .csv: %s" % path)
    return path


def sidecar_path(csv_path: str) -> str:
    """The metadata file written beside a CSV report: FILE.csv -> FILE.meta.json."""
    return os.path.splitext(csv_path)[0] + ".meta.json"


def _write(path: str, text: str) -> None:
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def _unit(name: str) -> str:
    """The unit a field name carries in its suffix (``energy_j`` -> J) or prefix (``power_w.cpu`` -> W)."""
    stem = name.split(".", 1)[0] if name.startswith(("power_w.", "energy_j.")) else name
    for suffix, unit in (("_percent", "%"), ("_ns", "ns"), ("_s", "s"), ("_j", "J"), ("_w", "W"), ("_a", "A"),
                         ("_mah", "mAh")):
        if stem.endswith(suffix):
            return unit
    return ""


def csv_table(doc: dict) -> tuple[list[tuple[str, str, str]], list[list], dict]:
    """The document's table: ([(column, unit, type)], rows, the rest of the document for the sidecar).

    node-result: the series (one row per sample); comparison: one row per policy; fleet: one row per
    node with its parameters; monitor and app-usage: one row per app (a monitor's series stays in the
    sidecar)."""
    kind = doc["schema"][len("iotbpf."):]
    rest = {k: v for k, v in doc.items()}
    if kind == "node-result":
        series = rest.pop("series")
        names = list(series)
        rows = [list(r) for r in zip(*(series[n] for n in names))]
    elif kind == "comparison":
        records = rest.pop("policies")
        names = list(records[0])
        rows = [[r[n] for n in names] for r in records]
    elif kind == "fleet":
        records = rest.pop("nodes")
        params = sorted({p for r in records for p in r["params"]})
        comps = sorted({c for r in records for c in r["components_energy_j"]})
        scalar = [n for n in records[0] if not isinstance(records[0][n], (dict, list))] if records else []
        names = scalar + ["param." + p for p in params] + ["energy_j." + c for c in comps]
        rows = [[r[n] for n in scalar] + [r["params"].get(p) for p in params]
                + [r["components_energy_j"].get(c) for c in comps] for r in records]
    else:
        records = rest.pop("apps")
        names = sorted({n for r in records for n, v in r.items() if not isinstance(v, (dict, list))},
                       key=lambda n: (n != "app", n))
        rows = [[r.get(n) for n in names] for r in records]
    columns = [(n, _unit(n), _column_type([row[i] for row in rows])) for i, n in enumerate(names)]
    return columns, rows, rest


def _column_type(values: list) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int}:
        return "integer" if kinds else "number"
    if kinds <= {int, float}:
        return "number"
    if kinds <= {bool}:
        return "boolean"
    return "string"


def load_report(path: str | os.PathLike) -> dict:
    """Read and validate a JSON document of any report kind."""
    path = os.fspath(path)
    if path.endswith(".csv"):
        raise LoadError("%s: CSV reports are for spreadsheets; read the JSON one (--report FILE.json)" % path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = boundedjson.loads(f.read())
    except OSError as exc:
        raise LoadError("cannot read report %s: %s" % (path, exc.strerror)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise LoadError("report %s is not JSON: %s" % (path, exc)) from None
    try:
        validate(doc)
    except LoadError as exc:
        raise LoadError("report %s: %s" % (path, exc)) from None
    return doc


def _is_number(value) -> bool:
    """A finite JSON number (bool is not one; Python's json reads NaN and Infinity)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and (isinstance(value, int) or value - value == 0.0))


# --------------------------------------------------------------------------- saved MQTT reports

def _saved_payload_problem(payload: dict) -> str | None:
    """What is wrong with the JSON types of a saved battery/energy/apps payload, or None."""
    ts = payload.get("ts_ns", 0)
    if not _is_number(ts):
        return "ts_ns must be a number, got %r" % (ts,)
    data = payload.get("data", {})
    if not isinstance(data, dict):
        return "data must be an object"
    kind = payload["kind"]
    if kind == "battery":
        for key in ("soc_percent", "time_to_empty_s"):
            if data.get(key) is not None and not _is_number(data[key]):
                return "%s must be a number, got %r" % (key, data[key])
    elif kind == "energy":
        if data.get("energy_j") is not None and not _is_number(data["energy_j"]):
            return "energy_j must be a number, got %r" % (data["energy_j"],)
        comps = data.get("components")
        if comps is not None and not isinstance(comps, dict):
            return "components must be an object"
        for name, comp in (comps or {}).items():
            if not isinstance(comp, dict) or (comp.get("energy_j") is not None and not _is_number(comp["energy_j"])):
                return "components.%s.energy_j must be a number" % name
    else:
        apps = data.get("apps", {})
        if not isinstance(apps, dict):
            return "apps must be an object"
        for name, app in apps.items():
            if not isinstance(app, dict) or (app.get("energy_j") is not None and not _is_number(app["energy_j"])):
                return "apps.%s.energy_j must be a number" % name
    return None


def report_from_saved(path: str | os.PathLike, node: str | None = None) -> dict:
    """A report (schema above) from the JSON lines ``iotbpf listen --save FILE`` wrote.

    Takes one node's battery, energy and apps reports (``node``, or the node with the most
    reports), grouped by the node's own timestamp; energy per component comes from the energy
    reports' ``components`` (cumulative ``energy_j``), or their total as component "node".
    """
    path = os.fspath(path)
    by_node: dict[str, dict[int, dict]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as exc:
        raise LoadError("cannot read %s: %s" % (path, exc.strerror)) from None
    except UnicodeDecodeError:
        raise LoadError("%s is not UTF-8 text (expected the JSON lines `iotbpf listen --save` writes)"
                        % path) from None
    for number, line in enumerate(lines, 1):
        try:
            entry = boundedjson.loads(line)
        except ValueError:
            raise LoadError("%s:%d: not a JSON line" % (path, number)) from None
        payload = entry.get("payload") if isinstance(entry, dict) else None
        if not isinstance(payload, dict) or payload.get("kind") not in ("battery", "energy", "apps"):
            continue
        problem = _saved_payload_problem(payload)
        if problem:
            raise LoadError("%s:%d: %s report: %s" % (path, number, payload["kind"], problem))
        at = by_node.setdefault(str(payload.get("node")), {}).setdefault(int(payload.get("ts_ns", 0)), {})
        at[payload["kind"]] = payload.get("data", {})
    if not by_node:
        raise LoadError("%s has no battery, energy or apps reports" % path)
    if node is None:
        node = max(sorted(by_node), key=lambda n: len(by_node[n]))
    elif node not in by_node:
        raise LoadError("%s has no reports of node %r (nodes: %s)" % (path, node, ", ".join(sorted(by_node))))
    rec = Recorder({"node": node, "source": os.path.basename(path)}, origin="zero")
    for ts in sorted(by_node[node]):
        kinds = by_node[node][ts]
        energy = kinds.get("energy")
        if energy is None:
            continue
        comps = energy.get("components")
        if isinstance(comps, dict) and comps:
            components = {n: {"energy_j": c.get("energy_j") or 0.0} for n, c in comps.items()}
        else:
            components = {"node": {"energy_j": energy.get("energy_j") or 0.0}}
        battery = kinds.get("battery", {})
        apps = {a: v.get("energy_j") or 0.0 for a, v in kinds.get("apps", {}).get("apps", {}).items()}
        rec.sample(ts, components, battery.get("soc_percent"), battery.get("time_to_empty_s"), apps)
    if len(rec) < 2:
        raise LoadError("%s: node %s has fewer than two energy reports to plot" % (path, node))
    return rec.report()
