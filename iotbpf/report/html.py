"""A single-file interactive HTML report (Plotly, inlined: opens offline) of any report document, in
the spirit of Battery Historian: a zoomable event timeline over power and state of charge.
It only reads the document (docs/reports.md, "The HTML report").
"""

from __future__ import annotations

import html as _html
import json
import os

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report.export import series_components
from iotbpf.report.plots import color, time_unit
from iotbpf.report.text import duration_text, duty_cycle_line, eng

EVENT_COLORS = {"radio burst": "#ff7f0e", "send request": "#1f77b4", "listen window": "#17becf",
                "fault": "#d62728", "battery empty": "#000000"}
TIMELINE_ID = "iotbpf-timeline"

# Zoom from the address (#t=A,B in seconds), then note how many radio-burst markers are drawn apart
# (at least 3 px from the previous one) in the visible plot: a test reads it from the DOM.
_SCRIPT = """
<script>
(function () {
  var gd = document.getElementById("%(id)s");
  var scale = %(scale)s;
  function count() {
    var n = 0, last = -1e9, xs = [];
    var width = gd._fullLayout.xaxis._length;
    gd.querySelectorAll(".scatterlayer .trace").forEach(function (trace, i) {
      var data = trace.__data__ && trace.__data__[0] && trace.__data__[0].trace;
      if (!data || data.name !== "radio burst") return;
      trace.querySelectorAll("path.point").forEach(function (p) {
        var m = /translate\\(([-0-9.e]+)/.exec(p.getAttribute("transform") || "");
        if (m) { var x = parseFloat(m[1]); if (x >= 0 && x <= width) xs.push(x); }
      });
    });
    xs.sort(function (a, b) { return a - b; });
    xs.forEach(function (x) { if (x - last >= 3) { n += 1; last = x; } });
    document.body.setAttribute("data-burst-markers-apart", String(n));
    document.body.setAttribute("data-burst-markers-drawn", String(xs.length));
  }
  function zoom() {
    var m = /#t=([0-9.e+-]+),([0-9.e+-]+)/.exec(window.location.hash);
    if (!m) { count(); return; }
    Plotly.relayout(gd, {"xaxis.range": [parseFloat(m[1]) / scale, parseFloat(m[2]) / scale]}).then(count);
  }
  if (gd && window.Plotly) { gd.on("plotly_afterplot", count); zoom(); }
  document.body.setAttribute("data-report-ready", "1");
})();
</script>
"""


def write_html(doc: dict, path: str | os.PathLike, zoom_s: tuple | None = None) -> str:
    """Write the report of ``doc`` (any kind) as one self-contained HTML file, its timeline opened at
    ``zoom_s`` = (start, end) in seconds when given; returns the path."""
    path = os.fspath(path)
    if not path.lower().endswith((".html", ".htm")):
        raise IotbpfError("HTML report file must end in .html: %s" % path)
    text = render(doc, zoom_s)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def render(doc: dict, zoom_s: tuple | None = None) -> str:
    """The HTML text of the report (``zoom_s``: the timeline's first view, in seconds)."""
    kind = doc.get("schema", "")[len("iotbpf."):]
    builders = {"node-result": _node, "comparison": _comparison, "fleet": _fleet, "monitor": _monitor,
                "app-usage": _app_usage}
    if kind not in builders:
        raise IotbpfError("no HTML report for a document with schema %r" % doc.get("schema"))
    title, summary, figures, scale = builders[kind](doc)
    if zoom_s is not None:
        figures[0][1].update_xaxes(range=[zoom_s[0] / scale, zoom_s[1] / scale])
    parts = []
    for i, (name, fig) in enumerate(figures):
        div_id = TIMELINE_ID if i == 0 else "iotbpf-figure-%d" % i
        parts.append("<h2>%s</h2>" % _html.escape(name))
        parts.append(fig.to_html(include_plotlyjs=(i == 0), full_html=False, div_id=div_id,
                                 config={"displaylogo": False, "responsive": True}))
    meta = doc.get("meta", {})
    banner = ("simulated: times are virtual (the run's own clock), not wall-clock"
              if meta.get("simulated") else "measured on a real host")
    rows = "".join("<tr><th>%s</th><td>%s</td></tr>" % (_html.escape(k), _html.escape(str(v))) for k, v in summary)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title>"
            "<style>body{font-family:sans-serif;margin:1.5em;max-width:1400px}"
            "table{border-collapse:collapse}th,td{text-align:left;padding:2px 12px 2px 0}"
            ".banner{color:#555;font-style:italic}</style></head>\n<body>\n<h1>%s</h1>"
            "<p class=\"banner\">%s · schema %s v%s</p><table>%s</table>\n%s\n%s\n"
            "<script type=\"application/json\" id=\"iotbpf-document-meta\">%s</script>\n</body></html>\n"
            % (_html.escape(title), _html.escape(title), banner, _html.escape(str(doc.get("schema"))),
               doc.get("version"), rows, "\n".join(parts), _SCRIPT % {"id": TIMELINE_ID, "scale": scale},
               json.dumps(meta, sort_keys=True).replace("</", "<\\/")))


# --------------------------------------------------------------------------- node result

def _node_timeline(doc: dict, go, make_subplots, label: str = ""):
    """Events, power and state of charge on one zoomable time axis."""
    series = doc["series"]
    t = series["t_s"]
    tname, tscale = time_unit(t[-1] - t[0] if len(t) > 1 else 1.0)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.3, 0.45, 0.25],
                        subplot_titles=("events", "power by component (log)", "state of charge"))
    events = doc.get("events") or []
    kinds = sorted({e["kind"] for e in events}, key=lambda k: (k != "radio burst", k))
    for kind in kinds:
        mine = [e for e in events if e["kind"] == kind]
        fig.add_trace(go.Scatter(
            x=[e["t_s"] / tscale for e in mine], y=[kind] * len(mine), mode="markers", name=kind,
            marker={"symbol": "line-ns-open", "size": 16, "line": {"width": 2},
                    "color": EVENT_COLORS.get(kind, "#7f7f7f")},
            hovertext=["%s at %s%s%s%s" % (kind, duration_text(e["t_s"]),
                                          "" if e.get("duration_s") is None else ", lasts " + eng(e["duration_s"], "s"),
                                          "" if not e.get("app") else ", app " + e["app"],
                                          "" if not e.get("detail") else ", " + e["detail"]) for e in mine],
            hoverinfo="text"), row=1, col=1)
    if not events:
        fig.add_annotation(text="no timeline events recorded (write the report with --html)", row=1, col=1,
                           showarrow=False, x=0.5, xref="x domain", y=0.5, yref="y domain")
    xs = [ti / tscale for ti in t[1:]]
    for n in series_components(doc):
        fig.add_trace(go.Scatter(x=xs, y=series["power_w." + n][1:], mode="lines", line={"shape": "vh",
                                 "color": color(n)}, name=n + " (average)", legendgroup="power"), row=2, col=1)
    fig.add_trace(go.Scatter(x=[ti / tscale for ti in t], y=series["soc_percent"], mode="lines",
                             line={"color": "green"}, name="state of charge"), row=3, col=1)
    died = doc["battery"].get("died_s")
    if died is not None:
        for row in (1, 2, 3):
            fig.add_vline(x=died / tscale, line={"color": "red", "dash": "dot"}, row=row, col=1)
    fig.update_yaxes(type="log", title_text="W", exponentformat="SI", row=2, col=1)
    fig.update_yaxes(range=[0, 100], title_text="%", row=3, col=1)
    fig.update_xaxes(title_text="time (%s)%s" % (tname, label), row=3, col=1)
    fig.update_layout(height=720, margin={"l": 110, "r": 20, "t": 40, "b": 40}, hovermode="closest",
                      legend={"orientation": "h", "y": -0.12})
    return fig, tscale


def _breakdown(doc: dict, go, make_subplots):
    comps = sorted(doc["components"].items(), key=lambda kv: kv[1]["energy_j"])
    apps = sorted(doc["apps"].items(), key=lambda kv: kv[1]["energy_j"])
    fig = make_subplots(rows=1, cols=2, subplot_titles=("energy per component", "energy per app"))
    fig.add_trace(go.Bar(x=[c["energy_j"] for _, c in comps], y=[n for n, _ in comps], orientation="h",
                         marker_color=[color(n) for n, _ in comps], text=[eng(c["energy_j"], "J") for _, c in comps],
                         name="components", showlegend=False), row=1, col=1)
    fig.add_trace(go.Bar(x=[a["energy_j"] for _, a in apps], y=[n for n, _ in apps], orientation="h",
                         marker_color=[color(n) for n, _ in apps], text=[eng(a["energy_j"], "J") for _, a in apps],
                         name="apps", showlegend=False), row=1, col=2)
    fig.update_xaxes(title_text="energy (J)", exponentformat="SI")
    fig.update_layout(height=max(300, 60 * max(len(comps), len(apps)) + 120), margin={"l": 110, "r": 20})
    return fig


def _node(doc: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    meta = doc["meta"]
    timeline, tscale = _node_timeline(doc, go, make_subplots)
    battery = doc["battery"]
    duty = doc["totals"].get("duty_cycle_percent", {})
    summary = [("node", meta.get("node")), ("app", meta.get("app")), ("board", meta.get("board")),
               ("policy", meta.get("policy")), ("run", duration_text(doc["duration_s"])),
               ("energy", eng(doc["totals"]["energy_j"], "J")),
               ("average power", eng(doc["totals"]["avg_power_w"], "W")),
               ("duty cycle", duty_cycle_line(duty).split(": ", 1)[1].strip()),
               ("state of charge at the end",
                "-" if battery["soc_percent"] is None else "%.4g %%" % battery["soc_percent"]),
               ("battery", "empty at %s" % duration_text(battery["died_s"]) if battery["died_s"] is not None
                else "lifetime %s (predicted)" % duration_text(battery["lifetime_s"]))]
    figures = [("Timeline", timeline), ("Breakdown", _breakdown(doc, go, make_subplots))]
    return "iotbpf report: %s" % (meta.get("node") or meta.get("app")), summary, figures, tscale


# --------------------------------------------------------------------------- the other kinds

def _comparison(doc: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = doc["policies"]
    names = [r["policy"] for r in rows]
    nodes = doc.get("nodes") or {}
    tname, tscale = time_unit(doc["duration_s"])
    timeline = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                             subplot_titles=("total power per policy (log)", "state of charge per policy"))
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
    for i, (policy, node) in enumerate(nodes.items()):
        series = node["series"]
        comps = series_components(node)
        total = [sum(series["power_w." + n][j] or 0.0 for n in comps) for j in range(1, len(series["t_s"]))]
        c = palette[i % len(palette)]
        timeline.add_trace(go.Scatter(x=[t / tscale for t in series["t_s"][1:]], y=total, mode="lines",
                                      line={"shape": "vh", "color": c}, name=policy, legendgroup=policy),
                           row=1, col=1)
        timeline.add_trace(go.Scatter(x=[t / tscale for t in series["t_s"]], y=series["soc_percent"], mode="lines",
                                      line={"color": c}, name=policy, legendgroup=policy, showlegend=False),
                           row=2, col=1)
        died = node["battery"].get("died_s")
        if died is not None:
            timeline.add_trace(go.Scatter(x=[died / tscale], y=[0], mode="markers+text", marker={"symbol": "x",
                                          "size": 12, "color": c}, text=["%s died day %.1f" % (policy, died / 86400)],
                                          textposition="top right", showlegend=False), row=2, col=1)
    timeline.update_yaxes(type="log", title_text="W", exponentformat="SI", row=1, col=1)
    timeline.update_yaxes(range=[0, 100], title_text="%", row=2, col=1)
    timeline.update_xaxes(title_text="time (%s)" % tname, row=2, col=1)
    timeline.update_layout(height=620)
    bars = make_subplots(rows=1, cols=2, subplot_titles=("average power (each over its own run)", "lifetime (d)"))
    bars.add_trace(go.Bar(x=names, y=[r["avg_power_w"] for r in rows], marker_color="#ff7f0e", showlegend=False,
                          text=["%s ×%s" % (eng(r["avg_power_w"], "W"), "-" if r["power_ratio_to_oracle"] is None
                                            else "%.4g oracle" % r["power_ratio_to_oracle"]) for r in rows]),
                   row=1, col=1)
    bars.add_trace(go.Bar(x=names, y=[(r["lifetime_s"] or 0) / 86400 for r in rows], showlegend=False,
                          marker_color=["#d62728" if r["died_s"] is not None else "#2ca02c" for r in rows],
                          text=["died day %.1f" % (r["died_s"] / 86400) if r["died_s"] is not None
                                else duration_text(r["lifetime_s"]) for r in rows]), row=1, col=2)
    bars.update_yaxes(type="log", exponentformat="SI", row=1, col=1)
    figures = [("Policies over time", timeline), ("Policies side by side", bars)]
    for policy, node in nodes.items():
        figures.append(("Breakdown: %s" % policy, _breakdown(node, go, make_subplots)))
    summary = [("app", doc["meta"].get("app")), ("board", doc["meta"].get("board")),
               ("run", duration_text(doc["duration_s"]))]
    summary += [(r["policy"], "%s over %s, %s%s" % (eng(r["energy_j"], "J"), duration_text(r["duration_s"]),
                                                     eng(r["avg_power_w"], "W"),
                                                     ", died day %.1f" % (r["died_s"] / 86400) if r["died_s"] else ""))
                for r in rows]
    return "iotbpf policy comparison: %s" % doc["meta"].get("app"), summary, figures, tscale


def _fleet(doc: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("node lifetimes (d)", "fleet state of charge"))
    fig.add_trace(go.Histogram(x=[n["lifetime_s"] / 86400 for n in doc["nodes"] if n["lifetime_s"] is not None],
                               name="nodes", showlegend=False), row=1, col=1)
    days = [t / 86400 for t in doc["series"]["t_s"]]
    for q, dash in (("p5", "dot"), ("p50", None), ("p95", "dot")):
        fig.add_trace(go.Scatter(x=days, y=doc["series"]["soc_percent_" + q], name="SoC " + q,
                                 line={"color": "green", "dash": dash}), row=1, col=2)
    fig.update_yaxes(range=[0, 100], row=1, col=2)
    fig.update_xaxes(title_text="time (d)", row=1, col=2)
    stats = doc["stats"]
    summary = [("nodes", stats["nodes"]), ("run", duration_text(doc["duration_s"])), ("died", stats["dead_nodes"]),
               ("median lifetime", duration_text(stats["lifetime_s"].get("p50")))]
    return "iotbpf fleet: %s" % doc["meta"].get("name"), summary, [("Fleet", fig)], 86400.0


def _apps_bar(apps: list, go, value="energy_j", unit="J"):
    apps = sorted(apps, key=lambda a: a.get(value) or 0.0)[-30:]
    fig = go.Figure(go.Bar(x=[a.get(value) or 0.0 for a in apps], y=[a["app"] for a in apps], orientation="h",
                           marker_color=[color(a["app"]) for a in apps], text=[eng(a.get(value), unit) for a in apps]))
    fig.update_xaxes(title_text="%s (%s)" % ("energy" if unit == "J" else "charge", unit), exponentformat="SI")
    fig.update_layout(height=max(300, 26 * len(apps) + 120), margin={"l": 200})
    return fig


def _monitor(doc: dict):
    import plotly.graph_objects as go

    meta = doc["meta"]
    figures = [("Energy per app", _apps_bar(doc["apps"], go))]
    series = doc["series"]
    if len(series.get("t_s", [])) > 1:
        fig = go.Figure()
        for n in series_components(doc):
            fig.add_trace(go.Scatter(x=series["t_s"], y=series["power_w." + n], name=n, stackgroup="apps",
                                     line={"color": color(n)}))
        fig.update_xaxes(title_text="time (s)")
        fig.update_yaxes(title_text="power (W)", exponentformat="SI")
        figures.append(("Power per app", fig))
    summary = [("host", meta["host"]), ("CPU model", meta["model"] + ("" if meta["model_matches_host"]
                                                                       else " (another machine's: an estimate)")),
               ("run", duration_text(doc["duration_s"])), ("estimate", eng(doc["totals"]["estimate_j"], "J")),
               ("measured", eng(doc["totals"]["measured_j"], "J"))]
    return "iotbpf monitor: %s" % meta["host"], summary, figures, 1.0


def _app_usage(doc: dict):
    import plotly.graph_objects as go

    apps = doc["apps"]
    charge = any(a.get("charge_mah") is not None for a in apps)
    figures = [("Per app", _apps_bar(apps, go, "charge_mah" if charge else "energy_j", "mAh" if charge else "J"))]
    events = doc.get("events") or []
    tname, tscale = time_unit(max([e["t_s"] + (e.get("duration_s") or 0) for e in events] + [1.0]))
    if events:   # screen on, wakelocks, foreground spans: one row per kind, each span as a bar
        timeline = go.Figure()
        for kind in sorted({e["kind"] for e in events}):
            mine = [e for e in events if e["kind"] == kind]
            timeline.add_trace(go.Bar(base=[e["t_s"] / tscale for e in mine], y=[kind] * len(mine), orientation="h",
                                      x=[max(e.get("duration_s") or 0.0, 1e-9) / tscale for e in mine], name=kind,
                                      hovertext=[e.get("app") or kind for e in mine]))
        timeline.update_xaxes(title_text="time (%s)" % tname)
        timeline.update_layout(barmode="overlay", height=200 + 30 * len({e["kind"] for e in events}))
        figures.insert(0, ("Timeline", timeline))
    summary = [("source", doc["meta"]["source"]), ("apps", len(apps)), ("run", duration_text(doc["duration_s"]))]
    return "iotbpf app usage", summary, figures, tscale
