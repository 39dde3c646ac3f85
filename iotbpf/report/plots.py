"""PNG/SVG/PDF plots of every report kind (matplotlib, Agg canvas, no pyplot state); CPython only.
The views and what each draws are in docs/mqtt.md ("Plots and report files").
"""

from __future__ import annotations

import os

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FuncFormatter

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report.export import series_components
from iotbpf.report.text import duration_text, eng, percent_text

TIME_UNITS = (("s", 1.0), ("min", 60.0), ("h", 3600.0), ("d", 86400.0))
# One colour per component in every plot (and in the HTML report).
COMPONENT_COLORS = {"cpu": "#1f77b4", "radio": "#ff7f0e", "sensor": "#2ca02c", "display": "#9467bd",
                    "gps": "#8c564b", "wifi": "#e377c2", "modem": "#7f7f7f", "node": "#17becf"}
_SPARE = ("#bcbd22", "#17becf", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
NODE_VIEWS = ("power", "duty", "soc", "apps")
COMPARISON_VIEWS = ("policies", "policy_power", "policy_soc")
FLEET_VIEWS = ("fleet_lifetimes", "fleet_soc", "fleet_policies")
MONITOR_VIEWS = ("apps", "app_power")
VIEWS = NODE_VIEWS + COMPARISON_VIEWS + FLEET_VIEWS + MONITOR_VIEWS[1:]


def color(name: str) -> str:
    """The colour of a component (or app) name, the same in every plot."""
    if name in COMPONENT_COLORS:
        return COMPONENT_COLORS[name]
    return _SPARE[sum(name.encode()) % len(_SPARE)]


def time_unit(duration_s: float) -> tuple[str, float]:
    """The unit that keeps a time axis readable: s up to 2 min, min up to 2 h, h up to 2 d, d."""
    if duration_s <= 120:
        return TIME_UNITS[0]
    if duration_s <= 7200:
        return TIME_UNITS[1]
    if duration_s <= 2 * 86400:
        return TIME_UNITS[2]
    return TIME_UNITS[3]


def _new_axes(ax, figsize=(9, 4)):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _who(doc: dict) -> str:
    meta = doc.get("meta", {})
    parts = [str(meta[k]) for k in ("node", "board", "policy") if meta.get(k)]
    if meta.get("simulated"):
        parts.append("simulated")
    return " · ".join(parts)


def _title(ax, doc: dict, what: str) -> None:
    who = _who(doc)
    ax.set_title(what + ("\n" + who if who else ""), fontsize="medium", loc="left")


def _time_axis(ax, t: list, tscale: float, tname: str) -> None:
    ax.set_xlim(t[0] / tscale, max(t[-1], t[0] + 1e-9) / tscale)
    ax.set_xlabel("time (%s)" % tname)
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")


def _state_power(doc: dict, comp: str, state) -> float | None:
    """A state's power as the document reports it (its energy over its time)."""
    info = doc["components"].get(comp, {}).get("states", {}).get(state) if state else None
    if not info or not info.get("time_s") or "energy_j" not in info:
        return None
    return info["energy_j"] / info["time_s"]


# --------------------------------------------------------------------------- node result

def plot_power(doc: dict, ax=None) -> Figure:
    """Average power per interval for each component and in all, and the peak envelope: the power of
    the highest-power state each component entered in the interval (a radio burst shows as a peak
    even when its average over the interval is tiny). Log axis when the two differ by far."""
    fig, ax = _new_axes(ax)
    series = doc["series"]
    t = series["t_s"]
    tname, tscale = time_unit(t[-1] - t[0])
    names = series_components(doc)
    xs = [ti / tscale for ti in t]
    total = [None] + [sum(series["power_w." + n][i] or 0.0 for n in names) for i in range(1, len(t))]
    peak = [None]
    for i in range(1, len(t)):
        values = [_state_power(doc, n, series.get("state." + n, [None] * len(t))[i]) for n in names]
        known = [v for v in values if v is not None]
        peak.append(sum(known) if known else None)
    ax.step(xs[1:], total[1:], where="pre", color="black", lw=2.4, alpha=0.35, label="total (average)")
    for n in names:   # on top of the total, which the largest component may equal
        ax.step(xs[1:], series["power_w." + n][1:], where="pre", color=color(n), lw=1.0, label=n + " (average)")
    if any(p is not None for p in peak):
        ax.step(xs[1:], peak[1:], where="pre", color="tab:red", lw=0.8, alpha=0.7,
                label="peak: highest-power states entered")
    positive = [v for v in total[1:] + peak[1:] if v]
    if positive and max(positive) > 100 * min(positive):
        ax.set_yscale("log")
        ax.set_ylabel("power (W, log scale)")
    else:
        ax.set_ylim(bottom=0)
        ax.set_ylabel("power (W)")
    ax.yaxis.set_major_formatter(EngFormatter(unit="W"))
    _time_axis(ax, t, tscale, tname)
    _title(ax, doc, "Power by component")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small")
    ax.grid(True, alpha=0.3)
    return fig


def plot_duty(doc: dict, ax=None) -> Figure:
    """Duty cycle per component: percent of each interval spent outside idle states (log axis)."""
    fig, ax = _new_axes(ax)
    series = doc["series"]
    t = series["t_s"]
    tname, tscale = time_unit(t[-1] - t[0])
    xs = [ti / tscale for ti in t]
    drawn = []
    for n in series_components(doc, "duty_percent."):
        values = series["duty_percent." + n]
        if any(v for v in values[1:]):
            mean = doc["totals"].get("duty_cycle_percent", {}).get(n)
            ax.step(xs[1:], [v if v else None for v in values[1:]], where="pre", color=color(n),
                    label="%s (run: %s)" % (n, percent_text(mean)))
            drawn += [v for v in values[1:] if v]
    if drawn:
        ax.set_yscale("log")
        ax.set_ylim(min(drawn) / 2, 100 if max(drawn) > 20 else max(drawn) * 2)
    ax.yaxis.set_major_formatter(FuncFormatter(_percent))
    ax.set_ylabel("time awake (% of interval, log)")
    _time_axis(ax, t, tscale, tname)
    _title(ax, doc, "Duty cycle (time outside sleep states)")
    if drawn:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small")
    ax.grid(True, alpha=0.3, which="both")
    return fig


def _percent(value: float, _pos=None) -> str:
    return "%s %%" % ("%.6f" % value).rstrip("0").rstrip(".")


def plot_soc(doc: dict, ax=None) -> Figure:
    """State of charge on a 0-100 % axis (as Battery Historian draws it), with the predicted
    discharge to empty when it falls inside five times the run, and the death if there was one."""
    fig, ax = _new_axes(ax)
    series = doc["series"]
    t = series["t_s"]
    points = [(ti, s) for ti, s in zip(t, series["soc_percent"]) if s is not None]
    battery = doc.get("battery", {})
    tte = battery.get("time_to_empty_s")
    run = max(t[-1] - t[0], 1e-9)
    full = tte is not None and points and 0 < tte <= 5 * run
    right = t[-1] + tte if full else t[-1]
    tname, tscale = time_unit(right - t[0])
    if points:
        drop = points[0][1] - points[-1][1]
        ax.plot([p[0] / tscale for p in points], [p[1] for p in points], color="tab:green",
                label="state of charge (%s used in the run)" % percent_text(drop))
        if full:
            last_t, last_soc = points[-1]
            ax.plot([last_t / tscale, (last_t + tte) / tscale], [last_soc, 0.0], linestyle="--",
                    color="tab:red", label="predicted: empty in %s" % duration_text(tte))
        elif tte is not None and tte > 0:
            ax.plot([], [], " ", label="predicted: empty in %s" % duration_text(tte))
    died = battery.get("died_s")
    if died is not None:
        ax.axvline(died / tscale, color="tab:red", lw=2, label="battery empty at %s" % duration_text(died))
    ax.set_xlim(t[0] / tscale, max(right, t[0] + 1e-9) / tscale)
    ax.set_ylim(0, 101)   # 0-100 %, with room for a full battery's line above the frame
    ax.set_yticks(range(0, 101, 20))
    ax.set_xlabel("time (%s)" % tname)
    ax.set_ylabel("state of charge (%)")
    _title(ax, doc, "Battery")
    if points:
        ax.legend(loc="lower left", fontsize="x-small")
    ax.grid(True, alpha=0.3)
    return fig


def plot_apps(doc: dict, ax=None) -> Figure:
    """Energy attributed to each app over the run (horizontal bars, largest on top); for a phone's app
    usage counted in charge, ours beside the platform's own estimate (mAh)."""
    apps = doc.get("apps", {})
    if doc.get("schema") == "iotbpf.app-usage" and any(a.get("charge_mah") is not None for a in apps):
        top = sorted(apps, key=lambda a: max(a.get("charge_mah") or 0.0, a.get("reference_charge_mah") or 0.0))[-25:]
        return _bars(ax, {a["app"]: a.get("charge_mah") or 0.0 for a in top}, "mAh",
                     "Charge per app: ours vs the platform's (%s)" % doc["meta"].get("source"),
                     compare={a["app"]: a.get("reference_charge_mah") or 0.0 for a in top})
    if isinstance(apps, list):   # monitor and app-usage documents list their apps
        values = {a["app"]: a.get("energy_j") or 0.0 for a in apps}
    else:
        values = {n: a["energy_j"] for n, a in apps.items()}
    values = dict(sorted(values.items(), key=lambda kv: kv[1])[-25:])
    meta = doc.get("meta", {})
    if doc.get("schema") == "iotbpf.monitor":
        estimate = "" if meta.get("model_matches_host") else ", another machine's: an estimate"
        title = "Energy per app on %s (CPU priced by the %s model%s)" % (meta.get("host"), meta.get("model"), estimate)
    else:
        who = _who(doc)
        title = "Energy per app" + ("\n" + who if who else "")
    return _bars(ax, values, "J", title)


def _bars(ax, values: dict, unit: str, title: str, compare: dict | None = None, label: str = "iotbpf",
          compare_label: str = "platform") -> Figure:
    """Horizontal bars (smallest at the bottom), each labelled in engineering units, optionally beside
    a second estimate."""
    fig, ax = _new_axes(ax, figsize=(9, max(3.0, 0.4 * (len(values) + 2))))
    names = sorted(values, key=lambda n: values[n])
    height = 0.4 if compare else 0.8
    rows = range(len(names))
    ours = ax.barh([r + (height / 2 if compare else 0) for r in rows], [values[n] for n in names], height,
                   label=label, color=[color(n) for n in names] if not compare else "tab:blue")
    ax.bar_label(ours, labels=[_amount(values[n], unit) for n in names], padding=3, fontsize="x-small")
    if compare:
        theirs = ax.barh([r - height / 2 for r in rows], [compare.get(n, 0.0) for n in names], height,
                         label=compare_label, color="tab:gray")
        ax.bar_label(theirs, labels=[_amount(compare.get(n, 0.0), unit) for n in names], padding=3,
                     fontsize="x-small")
        ax.legend(loc="lower right", fontsize="small")
    ax.set_yticks(list(rows), names)
    ax.xaxis.set_major_formatter(EngFormatter(unit=unit) if unit == "J" else FuncFormatter(_plain_number))
    ax.set_xlabel("energy (J)" if unit == "J" else "charge (%s)" % unit)
    ax.set_ylabel("app")
    ax.set_xlim(0, max(list(values.values()) + list((compare or {}).values()) + [0.0]) * 1.3 or 1.0)
    ax.set_title(title, fontsize="medium", loc="left")
    return fig


# --------------------------------------------------------------------------- comparison

def plot_policies(doc: dict, axes=None) -> Figure:
    """Policies side by side: average power (the fair measure when runs differ in length, with the
    ratio to the oracle) and lifetime, a battery that died marked with its day."""
    rows = doc.get("policies") or []
    if not rows:
        raise IotbpfError("the report has no policy comparison (run simulate --compare P1,P2,...)")
    own = axes is None
    if own:
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 2)
    fig = axes[0].figure
    names = [r["policy"] for r in rows]
    power = [r["avg_power_w"] or 0.0 for r in rows]
    bars = axes[0].bar(names, power, color="tab:orange")
    axes[0].bar_label(bars, labels=["%s\n×%s oracle" % (eng(p, "W"), _ratio(r["power_ratio_to_oracle"]))
                                    if r["power_ratio_to_oracle"] is not None else eng(p, "W")
                                    for p, r in zip(power, rows)], padding=2, fontsize="x-small")
    positive = [p for p in power if p > 0]
    if positive and max(positive) > 50 * min(positive):
        axes[0].set_yscale("log")
    axes[0].yaxis.set_major_formatter(EngFormatter(unit="W"))
    axes[0].set_ylabel("average power (W)")
    axes[0].set_title("Average power (each over its own run)", fontsize="medium", loc="left")
    life = [(r["lifetime_s"] or 0.0) / 86400.0 for r in rows]
    bars = axes[1].bar(names, life, color=["tab:red" if r["died_s"] is not None else "tab:green" for r in rows])
    axes[1].bar_label(bars, labels=["died day %.1f" % (r["died_s"] / 86400.0) if r["died_s"] is not None
                                    else ("unlimited" if r["lifetime_s"] is None else duration_text(r["lifetime_s"]))
                                    for r in rows], padding=2, fontsize="x-small")
    axes[1].set_ylabel("lifetime (d)")
    axes[1].set_title("Battery lifetime (red: died during the run)", fontsize="medium", loc="left")
    for ax in axes:
        ax.set_xlabel("policy")
        ax.margins(y=0.3)
        ax.tick_params(axis="x", labelrotation=20, labelsize="small")
    if own:
        fig.suptitle("Policy comparison over %s · %s" % (duration_text(doc["duration_s"]), doc["meta"].get("app")),
                     fontsize="medium")
    return fig


def _amount(value: float, unit: str) -> str:
    """A bar's label: J with an SI prefix; a charge in mAh as Ah with one (so 0.0075 mAh reads 7.5 µAh)."""
    if unit == "mAh":
        return "0 mAh" if not value else eng(value / 1000.0, "Ah")
    return eng(value, unit)


def _plain_number(value: float, _pos=None) -> str:
    return "%g" % value


def _ratio(value: float) -> str:
    return "%.0f" % value if value >= 100 else "%.4g" % value


def _policy_nodes(doc: dict) -> dict:
    nodes = doc.get("nodes") or {}
    if not nodes:
        raise IotbpfError("the comparison has no per-policy series (write it with --report or --json)")
    return nodes


def plot_policy_power(doc: dict, ax=None) -> Figure:
    """Total average power over time, one line per policy, each to its own end (log axis)."""
    fig, ax = _new_axes(ax)
    nodes = _policy_nodes(doc)
    tname, tscale = time_unit(doc["duration_s"])
    cmap = matplotlib.colormaps["tab10"]
    for i, (policy, node) in enumerate(nodes.items()):
        series = node["series"]
        names = series_components(node)
        total = [sum(series["power_w." + n][j] or 0.0 for n in names) for j in range(1, len(series["t_s"]))]
        ax.step([t / tscale for t in series["t_s"][1:]], total, where="pre", color=cmap(i % 10), label=policy)
        if node["battery"].get("died_s") is not None:
            ax.axvline(node["battery"]["died_s"] / tscale, color=cmap(i % 10), ls=":", lw=1.5)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(EngFormatter(unit="W"))
    ax.set_ylabel("total power (W, log)")
    ax.set_xlim(0, doc["duration_s"] / tscale)
    ax.set_xlabel("time (%s)" % tname)
    ax.set_title("Power per policy (dotted: battery empty)", fontsize="medium", loc="left")
    ax.legend(fontsize="x-small", loc="upper right")
    ax.grid(True, alpha=0.3)
    return fig


def plot_policy_soc(doc: dict, ax=None) -> Figure:
    """State of charge per policy on one 0-100 % axis, each line to its own end."""
    fig, ax = _new_axes(ax)
    nodes = _policy_nodes(doc)
    tname, tscale = time_unit(doc["duration_s"])
    cmap = matplotlib.colormaps["tab10"]
    for i, (policy, node) in enumerate(nodes.items()):
        pts = [(t, s) for t, s in zip(node["series"]["t_s"], node["series"]["soc_percent"]) if s is not None]
        died = node["battery"].get("died_s")
        ax.plot([p[0] / tscale for p in pts], [p[1] for p in pts], color=cmap(i % 10),
                label=policy + ("" if died is None else " (died day %.1f)" % (died / 86400.0)))
        if died is not None:
            ax.plot([died / tscale], [0], marker="x", color=cmap(i % 10), ms=9)
    ax.set_ylim(0, 101)
    ax.set_xlim(0, doc["duration_s"] / tscale)
    ax.set_xlabel("time (%s)" % tname)
    ax.set_ylabel("state of charge (%)")
    ax.set_title("State of charge per policy", fontsize="medium", loc="left")
    ax.legend(fontsize="x-small", loc="lower left")
    ax.grid(True, alpha=0.3)
    return fig


# --------------------------------------------------------------------------- monitor

def plot_app_power(doc: dict, ax=None) -> Figure:
    """Power per app over time (monitor runs), stacked, with the model and host in the title."""
    fig, ax = _new_axes(ax)
    series = doc["series"]
    t = series["t_s"]
    if len(t) < 2:
        raise IotbpfError("the monitor report has fewer than two intervals to plot")
    tname, tscale = time_unit(t[-1] - t[0])
    names = series_components(doc)
    ax.stackplot([x / tscale for x in t], [[v or 0.0 for v in series["power_w." + n]] for n in names],
                 labels=names, colors=[color(n) for n in names], alpha=0.85)
    ax.yaxis.set_major_formatter(EngFormatter(unit="W"))
    ax.set_ylabel("power (W)")
    _time_axis(ax, t, tscale, tname)
    meta = doc["meta"]
    ax.set_title("Power per app on %s (%s model%s)" % (meta.get("host"), meta.get("model"),
                                                       "" if meta.get("model_matches_host") else ": an estimate"),
                 fontsize="medium", loc="left")
    ax.legend(loc="upper left", fontsize="x-small", ncol=3)
    ax.grid(True, alpha=0.3)
    return fig


# --------------------------------------------------------------------------- files

def _fleet(view):
    def draw(doc: dict, ax=None) -> Figure:
        from iotbpf.report import fleet_plots

        return getattr(fleet_plots, view)(doc, ax)
    return draw


_PLOTTERS = {"power": plot_power, "duty": plot_duty, "soc": plot_soc, "apps": plot_apps,
             "policies": plot_policies, "policy_power": plot_policy_power, "policy_soc": plot_policy_soc,
             "fleet_lifetimes": _fleet("plot_lifetimes"), "fleet_soc": _fleet("plot_soc"),
             "fleet_policies": _fleet("plot_policies"), "app_power": plot_app_power}


def available_views(doc: dict) -> list[str]:
    """The views a document has data for."""
    kind = doc.get("schema", "")[len("iotbpf."):]
    if kind == "comparison":
        return ["policies"] + (["policy_power", "policy_soc"] if doc.get("nodes") else [])
    if kind == "fleet":
        views = ["fleet_lifetimes", "fleet_soc"]
        if len({n["policy"] for n in doc["nodes"]}) > 1:
            views.append("fleet_policies")
        return views
    if kind == "monitor":
        return ["apps"] + (["app_power"] if len(doc["series"].get("t_s", [])) > 1 else [])
    if kind == "app-usage":
        return ["apps"]
    views = ["power"]
    if any(v for n in series_components(doc, "duty_percent.") for v in doc["series"]["duty_percent." + n][1:]):
        views.append("duty")
    views.append("soc")
    if doc.get("apps"):
        views.append("apps")
    return views


def plot_report(doc: dict, path: str | os.PathLike | None = None, views: list | None = None) -> Figure:
    """All available views (or ``views``) of a document in one figure, one row each."""
    views = list(views or available_views(doc))
    apps = doc.get("apps") or {}
    heights = [max(3.9, 0.32 * min(25, len(apps)) + 1.2) if v == "apps" else 3.9 for v in views]
    fig = Figure(figsize=(11, sum(heights)), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(views), 2, height_ratios=heights)
    for row, view in enumerate(views):
        if view == "policies":
            plot_policies(doc, [fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1])])
        else:
            _PLOTTERS[view](doc, fig.add_subplot(grid[row, :]))
    if path is not None:
        _save(fig, path)
    return fig


def plot_dir(doc: dict, folder: str | os.PathLike, views: list | None = None) -> list[str]:
    """One image per available view (or ``views``) in ``folder`` (power.png, ...); returns the paths."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for view in views or available_views(doc):
        path = os.path.join(folder, view + ".png")
        _save(_PLOTTERS[view](doc), path)
        paths.append(path)
    return paths


def _save(fig: Figure, path) -> None:
    path = os.fspath(path)
    if not path.lower().endswith((".png", ".svg", ".pdf")):
        raise IotbpfError("plot file must end in .png, .svg or .pdf: %s" % path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        raise IotbpfError("cannot write plot %s: %s" % (path, exc)) from None
