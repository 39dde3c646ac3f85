"""Plots of a fleet document: lifetime distribution, fleet state of charge over time, policies compared.
Draws only numbers in the document; matplotlib on Agg canvases, so it works headless.
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from iotbpf.ebpf.errors import IotbpfError

DAY_S = 86400.0


def _axes(ax):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _plain(axis) -> None:
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)


def plot_lifetimes(doc: dict, ax=None) -> Figure:
    """Histogram of node lifetimes (a node that died is counted at its death, in red), with the
    median and the first death; whole-node counts on the y axis, plain days on the x axis."""
    fig, ax = _axes(ax)
    lived = [n["lifetime_s"] / DAY_S for n in doc["nodes"] if n["lifetime_s"] is not None and n["died_s"] is None]
    died = [n["died_s"] / DAY_S for n in doc["nodes"] if n["died_s"] is not None]
    values = lived + died
    if not values:
        raise IotbpfError("the fleet report has no node lifetimes to plot")
    low, high = min(values), max(values)
    if high - low < max(1e-6, 1e-6 * high):   # every node alike: one bar around the value
        low, high = low * 0.99, high * 1.01 + 1e-9
    bins = min(40, max(5, len(values) // 3))
    edges = [low + (high - low) * i / bins for i in range(bins + 1)]
    groups = [(v, c, label) for v, c, label in ((lived, "tab:blue", "predicted lifetime (battery left)"),
                                                 (died, "tab:red", "died during the run")) if v]
    ax.hist([g[0] for g in groups], bins=edges, stacked=True, color=[g[1] for g in groups], edgecolor="white",
            label=[g[2] for g in groups])
    median = sorted(values)[len(values) // 2]
    ax.axvline(median, color="black", linestyle="--", label="median %.4g d" % median)
    first = doc["stats"].get("first_death")
    if first is not None:
        ax.axvline(first["died_s"] / DAY_S, color="tab:red", label="first death %.4g d" % (first["died_s"] / DAY_S))
    ax.set_xlabel("lifetime (d)")
    ax.set_ylabel("nodes")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _plain(ax.xaxis)
    ax.set_title("Node lifetimes (%d nodes, %.4g d simulated)" % (len(values), doc["duration_s"] / DAY_S),
                 fontsize="medium", loc="left")
    ax.legend(fontsize="x-small")
    return fig


def plot_soc(doc: dict, ax=None) -> Figure:
    """Fleet state of charge over time: median and 5-95 % band of the nodes (0-100 % axis)."""
    fig, ax = _axes(ax)
    series = doc["series"]
    if not series["t_s"] or all(v is None for v in series["soc_percent_p50"]):
        raise IotbpfError("the fleet report has no state-of-charge samples to plot")
    days = [t / DAY_S for t in series["t_s"]]
    ax.fill_between(days, series["soc_percent_p5"], series["soc_percent_p95"], color="tab:green", alpha=0.3,
                    label="5-95 % of nodes")
    ax.plot(days, series["soc_percent_p50"], color="darkgreen", lw=2, label="median", zorder=3, clip_on=False)
    ax.set_xlim(0, doc["duration_s"] / DAY_S)
    ax.set_ylim(0, 101)
    ax.set_xlabel("time (d)")
    ax.set_ylabel("state of charge (%)")
    ax.set_title("Fleet state of charge", fontsize="medium", loc="left")
    ax.legend(fontsize="x-small", loc="lower left")
    ax.grid(True, alpha=0.3)
    return fig


def plot_policies(doc: dict, ax=None) -> Figure:
    """Lifetimes per scheduler policy across the fleet (one box per policy)."""
    by_policy: dict[str, list[float]] = {}
    for node in doc["nodes"]:
        if node["lifetime_s"] is not None:
            by_policy.setdefault(node["policy"], []).append(node["lifetime_s"] / DAY_S)
    if len(by_policy) < 2:
        raise IotbpfError("policy comparison needs nodes with at least two policies in the fleet")
    fig, ax = _axes(ax)
    names = sorted(by_policy)
    ax.boxplot([by_policy[n] for n in names], tick_labels=names)
    ax.set_xlabel("scheduler policy")
    ax.set_ylabel("lifetime (d)")
    _plain(ax.yaxis)
    ax.set_title("Node lifetime by policy", fontsize="medium", loc="left")
    return fig
