"""`iotbpf plot REPORT.json`: draw a saved report of any kind again (node, comparison, fleet, monitor, app usage).

Thin: reading lives in iotbpf.report.export, drawing in iotbpf.report.plots.
"""

from __future__ import annotations

import argparse
import os

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report.export import load_report, report_from_saved

VIEWS = ("power", "duty", "soc", "apps", "policies", "policy_power", "policy_soc", "fleet_lifetimes", "fleet_soc",
         "fleet_policies", "app_power")   # iotbpf.report.plots.VIEWS (a test checks they agree)

NAME = "plot"
HELP = "plot a saved report of any kind (simulate, --compare, --fleet, monitor, node: --report FILE.json)"
EXAMPLE = """iotbpf plot run.json          # run.json from: iotbpf simulate sensor_node --report run.json
iotbpf plot run.json -o run.png
iotbpf plot run.json --plot-dir plots/ --view power --view soc
iotbpf plot compare.json --html compare.html   # from: simulate APP --compare P1,P2 --report compare.json
iotbpf plot seen.jsonl --node-name greenhouse-1   # seen.jsonl from: iotbpf listen URL --save seen.jsonl"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", metavar="REPORT.json",
                        help="a report written with --report FILE.json, or the reports `iotbpf listen "
                             "--save FILE.jsonl` saved")
    parser.add_argument("--node-name", metavar="NAME",
                        help="with a listen --save file: which node (default: the one with most reports)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="FILE.png", help="one image with every plot (default: REPORT.png)")
    out.add_argument("--plot-dir", metavar="DIR", help="one image per plot in DIR")
    out.add_argument("--html", metavar="FILE.html", help="the interactive single-file HTML report instead")
    parser.add_argument("--view", action="append", choices=VIEWS, metavar="VIEW",
                        help="only this plot (repeatable; with --plot-dir or -o): " + ", ".join(VIEWS))


def run(args: argparse.Namespace) -> int:
    from iotbpf.report import plots  # matplotlib is slow to import: only when plotting

    if args.report.endswith(".jsonl"):
        report = report_from_saved(args.report, args.node_name)
    else:
        report = load_report(args.report)
    if args.html:
        from iotbpf.report.html import write_html

        print(write_html(report, args.html))
        return 0
    views = args.view or plots.available_views(report)
    missing = [v for v in views if v not in plots.available_views(report)]
    if missing:
        raise IotbpfError("the report has no data for: %s" % ", ".join(missing))
    if args.plot_dir:
        for path in plots.plot_dir(report, args.plot_dir, views):
            print(path)
        return 0
    output = args.output or os.path.splitext(args.report)[0] + ".png"
    plots.plot_report(report, output, views)
    print(output)
    return 0
