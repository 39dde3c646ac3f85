"""Numbers as people read them: engineering notation with units (``2.72 mJ``, not ``0.00271759 J``),
durations in plain words, tables. Every printed summary goes through here; it only formats.
"""

from __future__ import annotations

import math

_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


def eng(value: float | None, unit: str, digits: int = 3) -> str:
    """``value`` with an SI prefix and ``unit`` and ``digits`` significant digits: eng(0.0027, "J") == "2.7 mJ"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if value == 0:
        return "0 " + unit
    magnitude = abs(value)
    scale, prefix = next((p for p in _PREFIXES if magnitude >= p[0] * 0.9995), _PREFIXES[-1])
    return "%s %s%s" % (_digits(value / scale, digits), prefix, unit)


def _digits(x: float, digits: int) -> str:
    """``digits`` significant digits, never an exponent (0.0000545, not 5.45e-05)."""
    text = "%.*g" % (digits, x)
    if "e" in text:
        if abs(x) >= 1:
            return "%.0f" % x
        return "%.*f" % (digits - 1 - math.floor(math.log10(abs(x))), x)
    return text


def duration_text(seconds: float | None) -> str:
    """A duration in the largest unit that keeps it >= 1: "45 s", "12 min", "1 h", "3.5 d", "1.2 y"."""
    if seconds is None:
        return "-"
    for unit, scale in (("y", 365 * 86400.0), ("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if abs(seconds) >= scale:
            return "%s %s" % (_digits(seconds / scale, 3), unit)
    return eng(seconds, "s")


def percent_text(value: float | None) -> str:
    """A percentage with three significant digits and no exponent: "0.0000545 %"."""
    return "-" if value is None else "%s %%" % _digits(value, 3)


def duty_cycle_line(duty_percent: dict) -> str:
    """What Energest/powertrace users read first: the share of time each component was awake."""
    parts = ["%s %s" % (name, percent_text(value)) for name, value in sorted(duty_percent.items())]
    return "duty cycle (time outside sleep states): %s\n" % (", ".join(parts) or "-")


def format_comparison(rows: list[dict]) -> str:
    """The ``simulate --compare`` table from comparison-document rows: each policy's energy over its own
    span, its average power, the day its battery died, and the ratio of average power to the oracle's
    (a power ratio, so runs of different length compare fairly; the header says so)."""
    lines = ["%-16s %11s %9s %11s %11s %10s %9s %7s %8s %13s %7s" % (
        "policy", "energy", "over", "avg power", "avg current", "lifetime", "died", "misses", "rx_lost",
        "power/oracle", "gap")]
    for r in rows:
        gap = "-"
        if r.get("oracle_exact"):
            gap = "exact"
        elif r.get("oracle_gap") is not None:
            gap = "%.2f%%" % (100.0 * r["oracle_gap"])
        lines.append("%-16s %11s %9s %11s %11s %10s %9s %7d %8d %13s %7s" % (
            r["policy"].replace(" ", "_"), eng(r["energy_j"], "J"), duration_text(r["duration_s"]),
            eng(r["avg_power_w"], "W"), eng(r["avg_current_a"], "A"),
            "unlimited" if r["lifetime_s"] is None else duration_text(r["lifetime_s"]),
            "-" if r["died_s"] is None else "day_%.1f" % (r["died_s"] / 86400.0),
            r["deadline_misses"], r.get("rx_missed", 0),
            "-" if r["power_ratio_to_oracle"] is None else "%.4f" % r["power_ratio_to_oracle"], gap))
    return "\n".join(lines) + "\n"


def _state_name(state: str) -> str:
    """A power state as a person reads it: a ramp ``sleep>run`` is "switching sleep to run"."""
    if ">" in state:
        a, b = state.split(">", 1)
        return "switching %s to %s" % (a, b)
    return state


def energy_summary_lines(s: dict) -> list[str]:
    """The energy part of ``iotbpf simulate``'s summary from the scheduler's ``summary()``: engineering
    units everywhere, plain words, the battery's cell and what it has left, the predicted lifetime."""
    lines = ["energy: %s over %s, average current %s (policy %s, cpu %s, board %s)" % (
        eng(s["energy_j"], "J"), duration_text(s["duration_ns"] / 1e9), eng(s["average_current_a"], "A"),
        s["policy"], s["cpu_policy"], s["board"])]
    for comp, entry in s["components"].items():
        parts = ["%s %s" % (_state_name(st), eng(v["energy_j"], "J")) for st, v in entry["states"].items() if v["ns"]]
        lines.append("  component %-10s %10s  (%s)" % (comp, eng(entry["energy_j"], "J"), ", ".join(parts)))
    for app, joules in s["apps"].items():
        lines.append("  app %-16s %10s" % (app, eng(joules, "J")))
    b = s["battery"]
    cell = b.get("cell")
    kind = ("%s cell, %s model" % (cell.upper(), b["model"])) if cell else ("%s model" % b["model"])
    extra = ""
    if b.get("harvested_mah"):
        extra = ", harvested %s" % eng(b["harvested_mah"] * 1e-3, "Ah")
    lines.append("battery: %s mAh (%s), charge left %.1f %%, drawn %s%s" % (
        "%.0f" % b["capacity_mah"], kind, 100.0 * b["soc"], eng(b["drawn_mah"] * 1e-3, "Ah"), extra))
    life = s["lifetime_days"]
    lines.append("predicted lifetime: %s" % ("unlimited (energy-neutral)" if life is None
                                             else duration_text(life * 86400.0)))
    if "oracle" in s:
        o = s["oracle"]
        bound = "exact" if o["exact"] else "lower bound, gap %.2f %%" % (100.0 * o["gap"])
        ratio = s["energy_j"] / o["lower_bound_j"] if o["lower_bound_j"] else 0.0
        lines.append("oracle (offline optimum of this trace, %s): %s in %d bursts; this run / oracle = %.4f" % (
            bound, eng(o["lower_bound_j"], "J"), o["bursts"], ratio))
    return lines
