"""Plots of an energy report (matplotlib, Agg canvas, no pyplot state); CPython only.

Each ``plot_*`` function draws one view of a report dict (schema in iotbpf.report.export) on a
given Axes, or on a new Figure, and returns the Figure: power over time stacked by component,
the component state timeline, state of charge with the predicted time to empty, energy per
app, and a side-by-side policy comparison. Every axis has a label with its unit. Figures are
drawn on Agg canvases directly, so plotting works headless and from any thread. Plots only
draw numbers that are in the report; they must never compute new results.
"""

from __future__ import annotations

import os

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from iotbpf.ebpf.errors import IotbpfError

TIME_UNITS = (("s", 1.0), ("min", 60.0), ("h", 3600.0), ("d", 86400.0))
POWER_UNITS = (("W", 1.0), ("mW", 1e-3), ("µW", 1e-6))
ENERGY_UNITS = (("kJ", 1e3), ("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6))
VIEWS = ("power", "states", "soc", "apps", "policies")


def time_unit(duration_s: float) -> tuple[str, float]:
    """The unit that keeps a time axis readable: s up to 2 min, min up to 2 h, h up to 2 d, d."""
    if duration_s <= 120:
        return TIME_UNITS[0]
    if duration_s <= 7200:
        return TIME_UNITS[1]
    if duration_s <= 2 * 86400:
        return TIME_UNITS[2]
    return TIME_UNITS[3]


def _scaled_unit(largest: float, units) -> tuple[str, float]:
    for name, scale in units:
        if abs(largest) >= scale:
            return name, scale
    return units[-1]


def _new_axes(ax, figsize=(8, 4)):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _title(report: dict, what: str) -> str:
    meta = report.get("meta") or {}
    who = " · ".join(str(meta[k]) for k in ("node", "app", "board", "policy") if meta.get(k))
    return what + (" — " + who if who else "")


def plot_power(report: dict, ax=None) -> Figure:
    """Average power per interval, stacked by component (a step plot)."""
    fig, ax = _new_axes(ax)
    series = report["series"]
    t = series["t_s"]
    tname, tscale = time_unit(t[-1] - t[0])
    names = sorted(series["power_w"])
    totals = [sum(series["power_w"][n][i] for n in names) for i in range(len(t) - 1)]
    pname, pscale = _scaled_unit(max(totals, default=0.0), POWER_UNITS)
    # Each interval is drawn as a flat step: x = [t0, t1, t1, t2, ...].
    xs, stacks = [], {n: [] for n in names}
    for i in range(len(t) - 1):
        xs += [t[i] / tscale, t[i + 1] / tscale]
        for n in names:
            v = series["power_w"][n][i] / pscale
            stacks[n] += [v, v]
    if xs:
        ax.stackplot(xs, [stacks[n] for n in names], labels=names, alpha=0.85)
        ax.set_xlim(t[0] / tscale, t[-1] / tscale)
    ax.set_xlabel("time (%s)" % tname)
    ax.set_ylabel("power (%s)" % pname)
    ax.set_ylim(bottom=0)
    ax.set_title(_title(report, "Power by component"))
    if names:
        ax.legend(loc="upper right", fontsize="small")
    ax.grid(True, alpha=0.3)
    return fig


def plot_states(report: dict, ax=None) -> Figure:
    """One row per component; each interval coloured by the highest-power state it entered."""
    fig, ax = _new_axes(ax)
    series = report["series"]
    t = series["t_s"]
    tname, tscale = time_unit(t[-1] - t[0])
    names = sorted(series["state"])
    all_states = sorted({s for n in names for s in series["state"][n] if s is not None})
    cmap = matplotlib.colormaps["tab10"]
    colors = {s: cmap(i % 10) for i, s in enumerate(all_states)}
    for row, name in enumerate(names):
        spans: dict[str, list] = {}
        states = series["state"][name]
        i = 0
        while i < len(states):          # merge runs of the same state into one bar
            j = i
            while j + 1 < len(states) and states[j + 1] == states[i]:
                j += 1
            if states[i] is not None:
                spans.setdefault(states[i], []).append((t[i] / tscale, (t[j + 1] - t[i]) / tscale))
            i = j + 1
        for state in sorted(spans):
            ax.broken_barh(spans[state], (row - 0.4, 0.8), facecolors=colors[state], label=state)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlim(t[0] / tscale, t[-1] / tscale)
    ax.set_xlabel("time (%s)" % tname)
    ax.set_ylabel("component")
    ax.set_title(_title(report, "Component states (highest-power state entered per interval)"))
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="upper right", fontsize="small",
                  ncol=min(4, len(unique)))
    return fig


def plot_soc(report: dict, ax=None) -> Figure:
    """State of charge over time, and the predicted discharge to empty from the last sample.

    When the battery outlives the run by far (more than 5x), the axes keep to the run (the
    prediction is drawn as its slope and named in the legend), so the measured curve stays visible.
    """
    fig, ax = _new_axes(ax)
    series = report["series"]
    t = series["t_s"]
    points = [(ti, s) for ti, s in zip(t, series["soc_percent"]) if s is not None]
    tte = report.get("battery", {}).get("time_to_empty_s")
    run = max(t[-1] - t[0], 1e-9)
    full = tte is not None and points and tte <= 5 * run
    right = t[-1] + tte if full else t[-1] + 0.1 * run
    tname, tscale = time_unit(right - t[0])
    if points:
        ax.plot([p[0] / tscale for p in points], [p[1] for p in points], color="tab:green",
                label="state of charge")
        if tte is not None and tte <= 0:
            ax.plot([], [], " ", label="battery empty")
        elif tte is not None:
            last_t, last_soc = points[-1]
            end_t = last_t + tte if full else right
            end_soc = 0.0 if full else last_soc * (1.0 - (right - last_t) / tte) if tte > 0 else 0.0
            ax.plot([last_t / tscale, end_t / tscale], [last_soc, end_soc], linestyle="--",
                    color="tab:red", label="predicted: empty in %s" % _duration_text(tte))
    ax.set_xlim(t[0] / tscale, right / tscale)
    if full or not points:
        ax.set_ylim(0, 100)
    else:
        low = min(p[1] for p in points)
        pad = max((100.0 - low) * 0.2, 0.01)
        ax.set_ylim(max(0.0, low - pad), min(100.0, max(p[1] for p in points) + pad))
    ax.set_xlabel("time (%s)" % tname)
    ax.set_ylabel("state of charge (%)")
    ax.set_title(_title(report, "Battery"))
    if points:
        ax.legend(loc="upper right", fontsize="small")
    ax.grid(True, alpha=0.3)
    return fig


def plot_apps(report: dict, ax=None) -> Figure:
    """Energy attributed to each app over the run (horizontal bars, largest on top)."""
    fig, ax = _new_axes(ax)
    apps = sorted(report.get("apps", {}).items(), key=lambda kv: kv[1]["energy_j"])
    ename, escale = _scaled_unit(max((a["energy_j"] for _n, a in apps), default=0.0), ENERGY_UNITS)
    names = [n for n, _a in apps]
    values = [a["energy_j"] / escale for _n, a in apps]
    bars = ax.barh(names, values, color="tab:blue")
    ax.bar_label(bars, fmt="%.3g", padding=3, fontsize="small")
    ax.set_xlabel("energy (%s)" % ename)
    ax.set_ylabel("app")
    ax.set_xlim(0, max(values, default=1.0) * 1.2 or 1.0)
    ax.set_title(_title(report, "Energy per app"))
    return fig


def plot_policies(report: dict, axes=None) -> Figure:
    """Policies side by side: energy (with the ratio to the oracle) and predicted lifetime."""
    rows = report.get("policies") or []
    if not rows:
        raise IotbpfError("the report has no policy comparison (run simulate --compare P1,P2,...)")
    own_figure = axes is None
    if own_figure:
        fig = Figure(figsize=(10, 4), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 2)
    else:
        fig = axes[0].figure
    names = [r["policy"] for r in rows]
    energies = [r["energy_j"] or 0.0 for r in rows]
    ename, escale = _scaled_unit(max(energies, default=0.0), ENERGY_UNITS)
    bars = axes[0].bar(names, [e / escale for e in energies], color="tab:orange")
    labels = []
    for e, r in zip(energies, rows):
        ratio = r["oracle_ratio"]
        labels.append("%.3g" % (e / escale) + ("" if ratio is None else "\n×%.2f oracle" % ratio))
    axes[0].bar_label(bars, labels=labels, padding=2, fontsize="small")
    positive = [e for e in energies if e > 0]
    wide = len(positive) == len(energies) and positive and max(positive) > 50 * min(positive)
    if wide:   # e.g. always_on vs a duty cycle: a linear axis would hide every bar but one
        axes[0].set_yscale("log")
    axes[0].set_ylabel("energy (%s%s)" % (ename, ", log scale" if wide else ""))
    axes[0].set_xlabel("policy")
    axes[0].set_title("Policies: energy used")
    lifetimes = [r["lifetime_days"] or 0.0 for r in rows]
    bars = axes[1].bar(names, lifetimes, color="tab:green")
    axes[1].bar_label(bars, fmt="%.1f", padding=2, fontsize="small")
    axes[1].set_ylabel("predicted lifetime (d)")
    axes[1].set_xlabel("policy")
    axes[1].set_title("Policies: battery lifetime")
    for ax in axes:
        ax.margins(y=0.25)
    if own_figure:
        fig.suptitle(_title(report, "Policy comparison"))
    return fig


def app_energy(path: str | os.PathLike | None, apps: dict, title: str = "", compare: dict | None = None,
               compare_label: str = "android", label: str = "iotbpf", unit: str = "J") -> Figure:
    """Energy per app as horizontal bars, optionally beside a second estimate (e.g. Android's).

    ``apps`` and ``compare`` map app name -> energy in ``unit`` (e.g. "J" or "mAh").
    """
    fig, ax = _new_axes(None, figsize=(8, max(3.0, 0.45 * (len(apps) + 2))))
    names = sorted(apps, key=lambda n: apps[n])
    height = 0.4 if compare else 0.8
    rows = range(len(names))
    ours = ax.barh([r + (height / 2 if compare else 0) for r in rows], [apps[n] for n in names], height,
                   label=label, color="tab:blue")
    ax.bar_label(ours, fmt="%.3g", padding=3, fontsize="small")
    if compare:
        theirs = ax.barh([r - height / 2 for r in rows], [compare.get(n, 0.0) for n in names], height,
                         label=compare_label, color="tab:gray")
        ax.bar_label(theirs, fmt="%.3g", padding=3, fontsize="small")
        ax.legend(loc="lower right", fontsize="small")
    ax.set_yticks(list(rows), names)
    ax.set_xlabel("energy (%s)" % unit)
    ax.set_ylabel("app")
    ax.margins(x=0.15)
    ax.set_title(title or "Energy per app")
    if path is not None:
        _save(fig, path)
    return fig


def app_power_timeline(path: str | os.PathLike | None, times_s: list, series: dict,
                       title: str = "") -> Figure:
    """Power per app over time, stacked; ``series`` maps app -> watts at each of ``times_s``."""
    fig, ax = _new_axes(None)
    names = sorted(series)
    span = (times_s[-1] - times_s[0]) if len(times_s) > 1 else 1.0
    tname, tscale = time_unit(span)
    totals = [sum(series[n][i] for n in names) for i in range(len(times_s))]
    pname, pscale = _scaled_unit(max(totals, default=0.0), POWER_UNITS)
    if names and times_s:
        ax.stackplot([t / tscale for t in times_s], [[v / pscale for v in series[n]] for n in names],
                     labels=names, alpha=0.85)
        ax.legend(loc="upper left", fontsize="small", ncol=min(3, len(names)))
        if len(times_s) > 1:
            ax.set_xlim(times_s[0] / tscale, times_s[-1] / tscale)
    ax.set_xlabel("time (%s)" % tname)
    ax.set_ylabel("power (%s)" % pname)
    ax.set_ylim(bottom=0)
    ax.set_title(title or "Power per app")
    ax.grid(True, alpha=0.3)
    if path is not None:
        _save(fig, path)
    return fig


_PLOTTERS = {"power": plot_power, "states": plot_states, "soc": plot_soc, "apps": plot_apps,
             "policies": plot_policies}


def available_views(report: dict) -> list[str]:
    """The views a report has data for (states only when states were recorded, apps only with
    apps, policies only with a comparison)."""
    views = ["power"]
    if any(s is not None for states in report["series"]["state"].values() for s in states):
        views.append("states")
    views.append("soc")
    if report.get("apps"):
        views.append("apps")
    if report.get("policies"):
        views.append("policies")
    return views


def plot_report(report: dict, path: str | os.PathLike | None = None, views: list | None = None) -> Figure:
    """All available views (or ``views``) in one figure, one row each; saved to ``path`` if given."""
    views = list(views or available_views(report))
    fig = Figure(figsize=(11, 3.6 * len(views)), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(views), 2)
    for row, view in enumerate(views):
        if view == "policies":
            plot_policies(report, [fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1])])
        else:
            _PLOTTERS[view](report, fig.add_subplot(grid[row, :]))
    if path is not None:
        _save(fig, path)
    return fig


def plot_dir(report: dict, folder: str | os.PathLike, views: list | None = None) -> list[str]:
    """One PNG per available view (or ``views``) in ``folder`` (power.png, ...); returns the paths."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for view in views or available_views(report):
        path = os.path.join(folder, view + ".png")
        _save(_PLOTTERS[view](report), path)
        paths.append(path)
    return paths


def _save(fig: Figure, path) -> None:
    path = os.fspath(path)
    if not path.lower().endswith((".png", ".svg", ".pdf")):
        raise IotbpfError("plot file must end in .png, .svg or .pdf: %s" % path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110)


def _duration_text(seconds: float) -> str:
    for name, scale in reversed(TIME_UNITS):
        if seconds >= scale:
            return "%.1f %s" % (seconds / scale, name)
    return "%.2g s" % seconds
