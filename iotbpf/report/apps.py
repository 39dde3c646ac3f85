"""Per-app usage reports a person reads (simulated phone, Linux monitor or Android import), top apps
first, as text, JSON, CSV, a plot and MQTT data (docs/platforms.md, "Per-app reports").
"""

from __future__ import annotations

import csv
import io
import re

SYSTEM = "system"
REPORT_VERSION = 1
# app_monitor's struct app_stats (apps/app_monitor/app_monitor.c); Node.app_stats decodes with it too
APP_STATS_FIELDS = ("foreground_ns", "cpu_ns", "rx_bytes", "tx_bytes", "wakelock_ns", "energy_uj",
                    "wakeups", "sessions", "disk_read_bytes", "disk_write_bytes")
_APP_STATS_FMT = "<QQQQQQIIQQ"
FIELDS = ("name", "uid", "foreground_s", "sessions", "wakeups", "cpu_s", "wakelock_s", "net_rx_bytes",
          "net_tx_bytes", "disk_read_bytes", "disk_write_bytes", "energy_j", "share_percent")


class AppsReport:
    """Rows (dicts with FIELDS), largest energy first; ``system`` last; shares of ``total_j``."""

    def __init__(self, rows: list, total_j: float, source: str, system_detail: dict | None = None):
        self.source = source
        self.total_j = float(total_j)
        self.system_detail = dict(system_detail or {})  # component -> J of the "system" row
        apps = [r for r in rows if r["name"] != SYSTEM]
        system = [r for r in rows if r["name"] == SYSTEM]
        apps.sort(key=lambda r: (-r["energy_j"], -r["foreground_s"], r["name"]))
        self.rows = apps + system
        for r in self.rows:
            r["share_percent"] = 100.0 * r["energy_j"] / self.total_j if self.total_j else 0.0

    def row(self, name: str) -> dict | None:
        for r in self.rows:
            if r["name"] == name:
                return r
        return None

    def to_dict(self) -> dict:
        return {"version": REPORT_VERSION, "kind": "iotbpf-apps", "source": self.source,
                "total_j": self.total_j, "apps": [dict(r) for r in self.rows],
                "system_detail": dict(self.system_detail)}

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        for r in self.rows:
            writer.writerow(["" if r[f] is None else (round(r[f], 9) if isinstance(r[f], float) else r[f])
                             for f in FIELDS])
        return out.getvalue()

    def text(self, limit: int = 0) -> str:
        """A table, top apps first (``limit`` rows of apps, the rest summed as "other apps")."""
        head = "%-34s %7s %9s %5s %6s %8s %9s %10s %10s %10s %10s %10s %6s" % (
            "app", "uid", "fg", "sess", "wakes", "cpu", "wakelock", "net rx", "net tx", "disk read",
            "disk write", "energy J", "share")
        lines = ["per-app usage (%s), %.6g J in total" % (self.source, self.total_j), head]
        apps = [r for r in self.rows if r["name"] != SYSTEM]
        shown = apps[:limit] if limit else apps
        for r in shown + [r for r in self.rows if r["name"] == SYSTEM]:
            lines.append("%-34s %7s %9s %5d %6d %8s %9s %10s %10s %10s %10s %10.4g %5.1f%%" % (
                r["name"][:34], "" if r["uid"] is None else r["uid"], _dur(r["foreground_s"]), r["sessions"],
                r["wakeups"], _dur(r["cpu_s"]), _dur(r["wakelock_s"]), _bytes(r["net_rx_bytes"]),
                _bytes(r["net_tx_bytes"]), _bytes(r["disk_read_bytes"]), _bytes(r["disk_write_bytes"]),
                r["energy_j"], r["share_percent"]))
        if self.system_detail:
            lines.append("  system = " + ", ".join("%s %.4g J" % (c, j) for c, j in sorted(
                self.system_detail.items(), key=lambda kv: -kv[1]) if j))
        rest = apps[len(shown):]
        if rest:
            lines.append("%-34s %d more apps, %.4g J" % ("(other apps)", len(rest), sum(r["energy_j"] for r in rest)))
        return "\n".join(lines) + "\n"

    def mqtt_data(self) -> dict:
        """``data`` of the ``apps`` report on ``iotbpf/<node>/apps``: {"apps": {name: {...}}}."""
        return {"apps": dict((r["name"], dict((f, r[f]) for f in FIELDS if f != "name")) for r in self.rows),
                "total_j": self.total_j, "source": self.source}

    def plot(self, path: str, top: int = 12) -> str:
        """A horizontal bar chart of energy per app (top apps first, share on each bar)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [r for r in self.rows if r["name"] != SYSTEM][:top]
        system = self.row(SYSTEM)
        if system is not None:
            rows.append(system)
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
        names = [r["name"] for r in rows][::-1]
        values = [r["energy_j"] for r in rows][::-1]
        bars = ax.barh(names, values, color=["#999999" if n == SYSTEM else "#3b75af" for n in names])
        for bar, r in zip(bars, rows[::-1]):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " %.1f %%" % r["share_percent"],
                    va="center", fontsize=8)
        ax.set_xlabel("energy (J)")
        ax.set_title("Energy per app (%s), %.4g J in total" % (self.source, self.total_j))
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path


def _dur(seconds: float) -> str:
    if not seconds:
        return "0"
    if seconds >= 3600:
        return "%.1fh" % (seconds / 3600.0)
    if seconds >= 60:
        return "%.1fm" % (seconds / 60.0)
    return "%.1fs" % seconds


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("k", 1 << 10)):
        if n >= size:
            return "%.1f%s" % (n / size, unit)
    return str(n)


def _row(name: str, uid, counters: dict | None, energy_j: float) -> dict:
    c = counters or {}
    return {"name": name, "uid": uid, "foreground_s": c.get("foreground_ns", 0) / 1e9,
            "sessions": c.get("sessions", 0), "wakeups": c.get("wakeups", 0), "cpu_s": c.get("cpu_ns", 0) / 1e9,
            "wakelock_s": c.get("wakelock_ns", 0) / 1e9, "net_rx_bytes": c.get("rx_bytes", 0),
            "net_tx_bytes": c.get("tx_bytes", 0), "disk_read_bytes": c.get("disk_read_bytes", 0),
            "disk_write_bytes": c.get("disk_write_bytes", 0), "energy_j": float(energy_j), "share_percent": 0.0}


def from_counters(stats: dict, names: dict, energy_j: dict, total_j: float, source: str) -> AppsReport:
    """Join app_monitor's per-uid counters ({uid: {field: int}}) and names ({uid: name}) with the
    attribution's energy ({name: J}, "system" included). Every app with counters or energy gets a
    row; apps known only by energy (an eBPF app's own CPU, say) have no uid."""
    rows = []
    seen = set()
    for uid, counters in sorted(stats.items()):
        name = names.get(uid) or ("uid %d" % uid)
        seen.add(name)
        rows.append(_row(name, uid, counters, energy_j.get(name, 0.0)))
    for name, joules in sorted(energy_j.items()):
        if name not in seen:
            rows.append(_row(name, None, None, joules))
    return AppsReport(rows, total_j, source)


def from_node(node, app: str = "app_monitor") -> AppsReport:
    """The per-app report of a simulated (or real-time) Node running app_monitor."""
    runtime = node.build()
    summary = node.scheduler.summary() if node.scheduler is not None else {"apps": {}, "energy_j": 0.0}
    platform = getattr(runtime, "platform", None)
    source = "simulation" if getattr(platform, "usage", None) is not None else "node"
    report = from_counters(runtime_counters(runtime, app), runtime_names(runtime), summary["apps"],
                           summary["energy_j"], source)
    if node.scheduler is not None:  # what "system" is made of: the idle CPU, radios on standby...
        attr = node.scheduler.attr
        models = attr.ledger.models
        for (comp, state), ns in attr.per_app_detail().get(SYSTEM, {}).items():
            m = models[comp]
            report.system_detail[comp] = report.system_detail.get(comp, 0.0) + m.energy_j(state, ns)
    return report


def from_android(checkin, comparison, voltage_v: float = 3.85) -> AppsReport:
    """An Android import: the dump's per-uid counters with our attributed charge as energy
    (mAh x nominal voltage); global items (screen, cell, idle, unaccounted) are "system"."""
    from iotbpf.platforms.android import wakelock_ms

    held = wakelock_ms(checkin)
    rows = []
    apps_mah = 0.0
    for r in comparison.rows:
        if r["uid"] is None or r["ours_mah"] is None:
            continue
        usage = checkin.uids.get(r["uid"])
        counters = {}
        if usage is not None:
            net = usage.network
            counters = {"foreground_ns": usage.foreground_ms * 1000000, "sessions": usage.foreground_count,
                        "cpu_ns": usage.cpu_ms * 1000000,
                        "wakelock_ns": held.get(r["uid"], 0) * 1000000,
                        "rx_bytes": net.get("mobile_rx_bytes", 0) + net.get("wifi_rx_bytes", 0),
                        "tx_bytes": net.get("mobile_tx_bytes", 0) + net.get("wifi_tx_bytes", 0)}
        rows.append(_row(r["name"], r["uid"], counters, r["ours_mah"] * 3.6 * voltage_v))
        apps_mah += r["ours_mah"]
    total_mah = comparison.ours_total_mah
    rows.append(_row(SYSTEM, None, None, (total_mah - apps_mah) * 3.6 * voltage_v))
    return AppsReport(rows, total_mah * 3.6 * voltage_v, "android checkin")


def discovery_configs(node: str, apps: list, prefix: str = "homeassistant") -> dict:
    """Home Assistant MQTT discovery for per-app energy sensors: {config topic: config} for each
    app name, reading ``data.apps[<name>].energy_j`` from ``iotbpf/<node>/apps``."""
    object_node = re.sub(r"[^A-Za-z0-9_-]", "_", node)
    configs = {}
    for name in apps:
        object_app = re.sub(r"[^A-Za-z0-9_-]", "_", str(name))[:64]
        unique = "iotbpf_%s_app_%s" % (object_node, object_app)
        configs["%s/sensor/iotbpf_%s/app_%s/config" % (prefix, object_node, object_app)] = {
            "name": "%s energy" % name,
            "unique_id": unique,
            "object_id": unique,
            "state_topic": "iotbpf/%s/apps" % node,
            "value_template": "{{ value_json.data.apps[%s].energy_j }}" % _jinja_string(str(name)),
            "unit_of_measurement": "J",
            "device_class": "energy",
            "state_class": "total_increasing",
            "availability_topic": "iotbpf/%s/status" % node,
            "device": {"identifiers": ["iotbpf_" + object_node], "name": node, "manufacturer": "iotbpf"},
        }
    return configs


def _jinja_string(text: str) -> str:
    """A Jinja string literal for ``text`` (a package name may hold nothing but [A-Za-z0-9._])."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def runtime_counters(runtime, app: str = "app_monitor") -> dict:
    """app_monitor's per-uid counters read from a kernel Runtime ({} when it is not loaded)."""
    import struct

    for a in getattr(runtime, "apps", ()):
        if a.name == app and "app_stats" in a.maps:
            out = {}
            for key, value in a.maps["app_stats"].items():
                out[struct.unpack("<I", key)[0]] = dict(zip(APP_STATS_FIELDS, struct.unpack(_APP_STATS_FMT, value)))
            return out
    return {}


def runtime_names(runtime) -> dict:
    """{uid: app name} known to a runtime's platform (its usage generator, phone or trace)."""
    platform = getattr(runtime, "platform", None)
    names = {}
    usage = getattr(platform, "usage", None)
    if usage is not None:
        names.update(usage.names)
    phone = getattr(platform, "phone", None)
    if phone is not None:
        names.update(phone.names)
    for _t, hook, fields in getattr(platform, "trace", None) or ():
        if hook == "app_usage" and fields.get("app") and fields.get("uid"):
            names.setdefault(fields["uid"], fields["app"])
    return names


def live_data(runtime, energy_j: dict, total_j: float) -> dict:
    """The ``apps`` MQTT report's data for a live sample: per-app counters joined with energy."""
    return from_counters(runtime_counters(runtime), runtime_names(runtime), energy_j, total_j,
                         "live").mqtt_data()
