"""Energy reports: record a run as time series, and write/read them as JSON or CSV (CPython only).

A :class:`Recorder` takes cumulative samples of a node (per-component energy and time per
state, state of charge, time to empty, per-app energy) and turns consecutive samples into
per-interval average power and the highest-power state each component entered;
:meth:`Recorder.report` returns the report dict below, which the plots draw and the JSON/CSV
files hold -- the same numbers in all three.
This module must never invent a number: every value comes from a sample or a given summary.

Report schema "iotbpf.energy-report", version 1 (JSON)::

    {"schema": "iotbpf.energy-report", "version": 1,
     "meta": {"node", "app", "board", "policy", "seed", "clock": "virtual"|"real", ...},
     "duration_s": float,
     "series": {
        "t_s": [t0, t1, ..., tn],                 # sample times, seconds since the start
        "power_w": {component: [p1..pn]},         # average power over (t[i-1], t[i]], W
        "state": {component: [s1..sn]},           # highest-power state entered in that interval
        "soc_percent": [n+1 values or null],      # state of charge at each sample time
        "time_to_empty_s": [n+1 values or null]}, # predicted time to empty at each sample time
     "components": {component: {"energy_j": float,
                                "states": {state: {"time_s": float, "energy_j": float}}}},
                                                  # energy_j per state when the source has it
     "apps": {app: {"energy_j": float}},
     "battery": {"soc_percent": float|null, "time_to_empty_s": float|null,
                 "lifetime_days": float|null},    # lifetime = elapsed + time to empty
     "totals": {"energy_j": float, "avg_power_w": float},
     "policies": [{"policy": str, "energy_j": float, "avg_current_a": float|null,
                   "lifetime_days": float|null, "deadline_misses": int|null,
                   "oracle_ratio": float|null}, ...]}   # optional: a policy comparison

CSV (same numbers, one row per value) with columns
``section,name,t_start_s,t_end_s,value,unit``; sections: power (name = component, W),
state (value = state name), soc (%), time_to_empty (s), component_energy (name =
component or component/state, J), component_time (s), app_energy (J), total, battery,
policy (name = policy/metric).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

from iotbpf.ebpf import boundedjson
from iotbpf.ebpf.errors import IotbpfError, LoadError

REPORT_SCHEMA = "iotbpf.energy-report"
REPORT_VERSION = 1
CSV_COLUMNS = ("section", "name", "t_start_s", "t_end_s", "value", "unit")
POLICY_METRICS = (("energy_j", "J"), ("avg_current_a", "A"), ("lifetime_days", "d"),
                  ("deadline_misses", "count"), ("oracle_ratio", "ratio"))
NS_PER_S = 1_000_000_000


class Recorder:
    """Builds a report from cumulative samples taken during a run (virtual or real time).

    ``sample(t_ns, components, ...)`` with ``components = {name: {"energy_j": cumulative J,
    "states_ns": {state: cumulative ns}, "states_j": {state: cumulative J} (optional)}}``,
    ``apps = {name: cumulative J}``, ``soc_percent`` and ``time_to_empty_s`` (None when
    unknown). Samples must come in time order. Totals (per component, state and app) are the
    change since the first sample, or with ``origin="zero"`` the last sample's values as given
    (cumulative since the run began, e.g. including what booting cost at time 0).
    """

    def __init__(self, meta: dict | None = None, max_samples: int = 2000, origin: str = "first"):
        if origin not in ("first", "zero"):
            raise ValueError("origin must be 'first' or 'zero'")
        self.meta = dict(meta or {})
        self.origin = origin
        self.max_samples = max_samples
        self._samples: list[dict] = []

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

    def _thin(self) -> None:
        """Keep the first sample and every second one after it: cumulative values lose nothing."""
        kept = self._samples[::2]
        if kept[-1] is not self._samples[-1]:
            kept.append(self._samples[-1])
        self._samples = kept

    def report(self, policies: list[dict] | None = None) -> dict:
        """The report dict (schema above) for everything sampled so far."""
        if not self._samples:
            raise IotbpfError("nothing was recorded: no samples")
        first, last = self._samples[0], self._samples[-1]
        t0 = first["t_ns"]
        if self.origin == "zero":
            first = {"components": {}, "apps": {}}
        names = sorted({n for s in self._samples for n in s["components"]})
        t_s = [(s["t_ns"] - t0) / NS_PER_S for s in self._samples]
        power: dict[str, list] = {n: [] for n in names}
        state: dict[str, list] = {n: [] for n in names}
        for prev, cur in zip(self._samples, self._samples[1:]):
            dt = (cur["t_ns"] - prev["t_ns"]) / NS_PER_S
            for n in names:
                a = prev["components"].get(n, {"energy_j": 0.0, "states_ns": {}})
                b = cur["components"].get(n, {"energy_j": 0.0, "states_ns": {}})
                power[n].append((b["energy_j"] - a["energy_j"]) / dt if dt > 0 else 0.0)
                state[n].append(_top_state(a, b))
        components = {}
        for n in names:
            comp = last["components"].get(n, {"energy_j": 0.0, "states_ns": {}})
            base = first["components"].get(n, {"energy_j": 0.0, "states_ns": {}})
            states = {}
            for s, ns in sorted(comp["states_ns"].items()):
                states[s] = {"time_s": (ns - base["states_ns"].get(s, 0)) / NS_PER_S}
                if s in comp.get("states_j", {}):
                    states[s]["energy_j"] = comp["states_j"][s] - base.get("states_j", {}).get(s, 0.0)
            components[n] = {"energy_j": comp["energy_j"] - base["energy_j"], "states": states}
        apps = {a: {"energy_j": e - first["apps"].get(a, 0.0)} for a, e in sorted(last["apps"].items())}
        duration = t_s[-1]
        total = sum(c["energy_j"] for c in components.values())
        tte = last["time_to_empty_s"]
        report = {
            "schema": REPORT_SCHEMA, "version": REPORT_VERSION, "meta": dict(self.meta),
            "duration_s": duration,
            "series": {"t_s": t_s, "power_w": power, "state": state,
                       "soc_percent": [s["soc_percent"] for s in self._samples],
                       "time_to_empty_s": [s["time_to_empty_s"] for s in self._samples]},
            "components": components,
            "apps": apps,
            "battery": {"soc_percent": last["soc_percent"], "time_to_empty_s": tte,
                        "lifetime_days": None if tte is None else (duration + tte) / 86400.0},
            "totals": {"energy_j": total, "avg_power_w": total / duration if duration > 0 else 0.0},
        }
        if policies:
            report["policies"] = [normalise_policy_row(p) for p in policies]
        return report


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


def normalise_policy_row(row: dict) -> dict:
    """A policy comparison row with every documented metric (None where unknown)."""
    if not isinstance(row, dict) or not isinstance(row.get("policy"), str):
        raise IotbpfError("a policy row needs a 'policy' name")
    out = {"policy": row["policy"]}
    for metric, _unit in POLICY_METRICS:
        out[metric] = _num_or_none(row.get(metric))
    return out


def _num_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- files

def write_report(report: dict, path: str | os.PathLike) -> str:
    """Write ``report`` as JSON (``.json``) or CSV (``.csv``), chosen by the file suffix."""
    path = os.fspath(path)
    validate_report(report)
    if path.endswith(".json"):
        text = json.dumps(report, indent=1, sort_keys=True, allow_nan=False) + "\n"
    elif path.endswith(".csv"):
        text = report_to_csv(report)
    else:
        raise IotbpfError("report file must end in .json or .csv: %s" % path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def load_report(path: str | os.PathLike) -> dict:
    """Read and validate a JSON report written by ``write_report``."""
    path = os.fspath(path)
    if path.endswith(".csv"):
        raise LoadError("%s: CSV reports are for spreadsheets; read the JSON one (--report FILE.json)" % path)
    try:
        with open(path, encoding="utf-8") as f:
            report = boundedjson.loads(f.read())
    except OSError as exc:
        raise LoadError("cannot read report %s: %s" % (path, exc.strerror)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise LoadError("report %s is not JSON: %s" % (path, exc)) from None
    try:
        validate_report(report)
    except IotbpfError as exc:
        raise LoadError("report %s: %s" % (path, exc)) from None
    return report


def validate_report(report) -> None:
    """Raise LoadError naming the first thing that does not follow the schema."""
    if not isinstance(report, dict):
        raise LoadError("not a JSON object")
    if report.get("schema") != REPORT_SCHEMA:
        raise LoadError("schema is %r, expected %r" % (report.get("schema"), REPORT_SCHEMA))
    if report.get("version") != REPORT_VERSION:
        raise LoadError("version %r is not supported (this iotbpf reads %d)"
                        % (report.get("version"), REPORT_VERSION))
    series = report.get("series")
    if not isinstance(series, dict) or not isinstance(series.get("t_s"), list) or not series["t_s"]:
        raise LoadError("series.t_s is missing")
    n = len(series["t_s"]) - 1
    for key in ("power_w", "state"):
        table = series.get(key)
        if not isinstance(table, dict):
            raise LoadError("series.%s is missing" % key)
        for name, values in table.items():
            if not isinstance(values, list) or len(values) != n:
                raise LoadError("series.%s.%s must have %d values (one per interval)" % (key, name, n))
    for key in ("soc_percent", "time_to_empty_s"):
        values = series.get(key)
        if not isinstance(values, list) or len(values) != n + 1:
            raise LoadError("series.%s must have %d values (one per sample)" % (key, n + 1))
    for key in ("components", "apps", "battery", "totals"):
        if not isinstance(report.get(key), dict):
            raise LoadError("%s is missing" % key)
    if "policies" in report and not isinstance(report["policies"], list):
        raise LoadError("policies must be a list")
    if report.get("meta") is not None and not isinstance(report["meta"], dict):
        raise LoadError("meta must be an object")
    for i, row in enumerate(report.get("policies") or []):
        if not isinstance(row, dict) or not isinstance(row.get("policy"), str) or not row["policy"]:
            raise LoadError("policies[%d] has no policy name" % i)
        if not (row.get("energy_j") is None or _is_number(row.get("energy_j"))):
            raise LoadError("policies[%d].energy_j must be a number or null" % i)
    _check_types(report)


def _is_number(value) -> bool:
    """A finite JSON number (bool is not one; Python's json reads NaN and Infinity)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and (isinstance(value, int) or value - value == 0.0))


def _check_types(report: dict) -> None:
    """The JSON types of every field plot/export read (a wrong one is a LoadError, not a crash)."""
    if not _is_number(report.get("duration_s")):
        raise LoadError("duration_s must be a number, got %r" % (report.get("duration_s"),))
    series = report["series"]
    if not all(_is_number(t) for t in series["t_s"]):
        raise LoadError("series.t_s must hold numbers")
    for name, values in series["power_w"].items():
        if not all(_is_number(v) for v in values):
            raise LoadError("series.power_w.%s must hold numbers" % name)
    for name, values in series["state"].items():
        if not all(v is None or isinstance(v, str) for v in values):
            raise LoadError("series.state.%s must hold state names or null" % name)
    for key in ("soc_percent", "time_to_empty_s"):
        if not all(v is None or _is_number(v) for v in series[key]):
            raise LoadError("series.%s must hold numbers or null" % key)
    for section in ("components", "apps"):
        for name, entry in report[section].items():
            if not isinstance(entry, dict) or not _is_number(entry.get("energy_j")):
                raise LoadError("%s.%s.energy_j must be a number" % (section, name))
            states = entry.get("states", {})
            if not isinstance(states, dict) or not all(
                    isinstance(info, dict) and _is_number(info.get("time_s"))
                    and ("energy_j" not in info or _is_number(info["energy_j"])) for info in states.values()):
                raise LoadError("%s.%s.states must map states to {time_s, energy_j} numbers" % (section, name))
    for key in ("energy_j", "avg_power_w"):
        if not _is_number(report["totals"].get(key)):
            raise LoadError("totals.%s must be a number" % key)
    for key in ("soc_percent", "time_to_empty_s", "lifetime_days"):
        value = report["battery"].get(key)
        if not (value is None or _is_number(value)):
            raise LoadError("battery.%s must be a number or null" % key)


def csv_rows(report: dict) -> list[tuple]:
    """Every number of the report as (section, name, t_start_s, t_end_s, value, unit) rows."""
    rows = []
    series = report["series"]
    t = series["t_s"]
    for name in sorted(series["power_w"]):
        for i, p in enumerate(series["power_w"][name]):
            rows.append(("power", name, t[i], t[i + 1], p, "W"))
    for name in sorted(series["state"]):
        for i, s in enumerate(series["state"][name]):
            rows.append(("state", name, t[i], t[i + 1], "" if s is None else s, ""))
    for i, v in enumerate(series["soc_percent"]):
        if v is not None:
            rows.append(("soc", "battery", t[i], t[i], v, "%"))
    for i, v in enumerate(series["time_to_empty_s"]):
        if v is not None:
            rows.append(("time_to_empty", "battery", t[i], t[i], v, "s"))
    end = report["duration_s"]
    for name, comp in sorted(report["components"].items()):
        rows.append(("component_energy", name, 0.0, end, comp["energy_j"], "J"))
        for state, info in sorted(comp.get("states", {}).items()):
            rows.append(("component_time", name + "/" + state, 0.0, end, info["time_s"], "s"))
            if "energy_j" in info:
                rows.append(("component_energy", name + "/" + state, 0.0, end, info["energy_j"], "J"))
    for name, app in sorted(report["apps"].items()):
        rows.append(("app_energy", name, 0.0, end, app["energy_j"], "J"))
    for key, unit in (("energy_j", "J"), ("avg_power_w", "W")):
        rows.append(("total", key, 0.0, end, report["totals"][key], unit))
    for key, unit in (("soc_percent", "%"), ("time_to_empty_s", "s"), ("lifetime_days", "d")):
        value = report["battery"].get(key)
        if value is not None:
            rows.append(("battery", key, end, end, value, unit))
    for row in report.get("policies", []):
        for metric, unit in POLICY_METRICS:
            if row.get(metric) is not None:
                rows.append(("policy", "%s/%s" % (row["policy"], metric), 0.0, end, row[metric], unit))
    return rows


def report_to_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in csv_rows(report):
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return out.getvalue()


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
