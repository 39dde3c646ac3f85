"""Regenerate the pictures in docs/images: every plot kind at 1 d and 1 y, and the HTML report's screenshot.

    PYTHONPATH=. python docs/images/regenerate.py            # everything (a few minutes)
    PYTHONPATH=. python docs/images/regenerate.py --quick    # 1 d only (what the test runs)

Runs the real CLI (simulate, --compare, --fleet, monitor --android-checkin) and draws each report with
`iotbpf plot`; the screenshot is taken by headless Chromium (skipped, with a note, when it is missing).
The monitor is real time: it is drawn for a short live run, not at 1 d and 1 y.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)
from iotbpf.report.export import load_report  # noqa: E402  (this tree's iotbpf)
from iotbpf.report.html import write_html  # noqa: E402

SHARED = os.environ.get("IOTBPF_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
RUNS = (  # name, extra simulate arguments
    ("node", ["sensor_node"]),
    ("compare", ["sensor_node", "--compare", "always_on,duty_cycle,batching"]),
    ("fleet", ["sensor_node", "--fleet", "12", "--backend", "inprocess"]),
)


def iotbpf(*argv: str) -> None:
    subprocess.run([sys.executable, "-m", "iotbpf", *argv], check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def screenshot(html: str, png: str) -> bool:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("note: no chromium: %s not taken" % png)
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run",
                        "--user-data-dir=" + profile, "--window-size=1400,1500", "--virtual-time-budget=20000",
                        "--hide-scrollbars", "--screenshot=" + png, "file://" + html],
                       check=True, capture_output=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 d only")
    parser.add_argument("--out", default=HERE, help="folder of the images (default: docs/images)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as work:
        for duration in ("1d",) if args.quick else ("1d", "1y"):
            for name, extra in RUNS:
                report = os.path.join(work, "%s_%s.json" % (name, duration))
                iotbpf("simulate", *extra, "--duration", duration, "--report", report)
                target = os.path.join(args.out, "%s_%s.png" % (name, duration))
                iotbpf("plot", report, "-o", target)
                written.append(target)
        html = os.path.join(work, "week.html")
        week = os.path.join(work, "week.json")
        iotbpf("simulate", "sensor_node", "--duration", "7d", "--html", html, "--report", week)
        zoomed = os.path.join(work, "week_6h.html")
        write_html(load_report(week), zoomed, zoom_s=(0, 6 * 3600))   # the same report, opened at 6 h
        for page, name in ((html, "html_report.png"), (zoomed, "html_report_zoom.png")):
            target = os.path.join(args.out, name)
            if screenshot(page, target):
                written.append(target)
        monitor = os.path.join(work, "monitor.json")
        iotbpf("monitor", "--interval", "500ms", "--duration", "3s", "--report", monitor)
        written.append(os.path.join(args.out, "monitor.png"))
        iotbpf("plot", monitor, "-o", written[-1])
        checkin = os.path.join(SHARED, "data", "batterystats_checkin_emulator.txt")
        if os.path.exists(checkin):
            phone = os.path.join(work, "phone.json")
            iotbpf("monitor", "--android-checkin", checkin, "--power-profile",
                   os.path.join(SHARED, "data", "power_profile_sample.xml"), "--report", phone)
            written.append(os.path.join(args.out, "app_usage.png"))
            iotbpf("plot", phone, "-o", written[-1])
    for path in written:
        print(os.path.relpath(path, REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
