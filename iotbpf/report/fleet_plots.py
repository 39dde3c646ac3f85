"""Plots of a fleet report: lifetime distribution, fleet state of charge over time, policies compared.

Draws only numbers that are in the report (iotbpf.fleet.run_fleet's dict); CPython only,
matplotlib on Agg canvases (no pyplot state), so it works headless.
"""

from __future__ import annotations

import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from iotbpf.ebpf.errors import IotbpfError

VIEWS = ("lifetimes", "soc", "policies")


def _percentile(sorted_values: list[float], q: float) -> float:
    position = (len(sorted_values) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def plot_lifetimes(report: dict) -> Figure:
    """Histogram of predicted (or actual) node lifetimes, with the median and the first death."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    lifetimes = [n["lifetime_days"] for n in report["nodes"] if n.get("lifetime_days") is not None]
    if not lifetimes:
        raise IotbpfError("the fleet report has no node lifetimes to plot")
    ax.hist(lifetimes, bins=min(40, max(5, len(lifetimes) // 5)), color="tab:blue", edgecolor="white",
            label="nodes")
    median = _percentile(sorted(lifetimes), 50)
    ax.axvline(median, color="black", linestyle="--", label="median %.1f d" % median)
    first = report["stats"].get("first_death")
    if first is not None:
        ax.axvline(first["days"], color="tab:red", label="first death %.1f d" % first["days"])
    ax.set_xlabel("lifetime (days)")
    ax.set_ylabel("nodes")
    ax.set_title("Node lifetime distribution (%d nodes)" % len(lifetimes))
    ax.legend()
    fig.tight_layout()
    return fig


def plot_soc(report: dict) -> Figure:
    """Fleet state of charge over time: median and 5-95 % band of the nodes' sampled SoC."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    samples = report.get("soc_samples") or 0
    series = [n["soc"] for n in report["nodes"] if n.get("soc") and None not in n["soc"]]
    if not samples or not series:
        raise IotbpfError("the fleet report has no state-of-charge samples to plot")
    days = report["spec"]["duration_s"] / 86400.0
    times = [days * (i + 1) / samples for i in range(samples)]
    low, mid, high = [], [], []
    for i in range(samples):
        column = sorted(100.0 * s[i] for s in series if i < len(s))
        low.append(_percentile(column, 5))
        mid.append(_percentile(column, 50))
        high.append(_percentile(column, 95))
    ax.fill_between(times, low, high, color="tab:green", alpha=0.3, label="5-95 % of nodes")
    ax.plot(times, mid, color="tab:green", label="median")
    ax.set_xlim(0, days)
    ax.set_ylim(0, 100)
    ax.set_xlabel("time (days)")
    ax.set_ylabel("state of charge (%)")
    ax.set_title("Fleet state of charge")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_policies(report: dict) -> Figure:
    """Lifetimes per scheduler policy across the fleet (one box per policy)."""
    by_policy: dict[str, list[float]] = {}
    for node in report["nodes"]:
        if node.get("lifetime_days") is not None:
            by_policy.setdefault(node["policy"], []).append(node["lifetime_days"])
    if len(by_policy) < 2:
        raise IotbpfError("policy comparison needs nodes with at least two policies in the fleet")
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    names = sorted(by_policy)
    ax.boxplot([by_policy[n] for n in names], tick_labels=names)
    ax.set_xlabel("scheduler policy")
    ax.set_ylabel("lifetime (days)")
    ax.set_title("Node lifetime by policy")
    fig.tight_layout()
    return fig


_PLOTTERS = {"lifetimes": plot_lifetimes, "soc": plot_soc, "policies": plot_policies}


def save(fig: Figure, path: str) -> None:
    FigureCanvasAgg(fig)
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        raise IotbpfError("cannot write plot %s: %s" % (path, exc)) from None


def save_all(report: dict, plot: str | None = None, plot_dir: str | None = None) -> list[str]:
    """``plot``: the lifetime distribution to one file; ``plot_dir``: every view that applies."""
    written = []
    if plot:
        save(plot_lifetimes(report), plot)
        written.append(plot)
    if plot_dir:
        os.makedirs(plot_dir, exist_ok=True)
        for view in VIEWS:
            try:
                fig = _PLOTTERS[view](report)
            except IotbpfError:
                continue
            path = os.path.join(plot_dir, "fleet_%s.png" % view)
            save(fig, path)
            written.append(path)
    return written
