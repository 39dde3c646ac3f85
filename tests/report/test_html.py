"""The single-file HTML report, rendered by a real headless Chromium: it draws offline, the timeline is
there, and zooming in separates radio bursts that the whole-run view draws on top of each other."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from matplotlib.image import imread

from conftest import missing
from iotbpf.report.html import TIMELINE_ID

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1800",
                  "--virtual-time-budget=20000"]


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing("chromium (apt install chromium)")
    return path


def _run(chromium, tmp_path, url, *extra) -> subprocess.CompletedProcess:
    profile = tmp_path / ("profile-%d" % len(list(tmp_path.iterdir())))
    return subprocess.run([chromium, *CHROMIUM_FLAGS, "--user-data-dir=%s" % profile, *extra, url],
                          capture_output=True, text=True, timeout=300)


def _body(chromium, tmp_path, url) -> dict:
    proc = _run(chromium, tmp_path, url, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", proc.stdout).group(1)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    attrs["dom"] = proc.stdout
    return attrs


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    from iotbpf.cli import main

    folder = tmp_path_factory.mktemp("html")
    page = folder / "week.html"
    # 30 days: bursts every 30 min are then closer than a pixel apart over the whole run
    assert main(["simulate", "sensor_node", "--duration", "30d", "--html", str(page), "--report",
                 str(folder / "week.json")]) == 0
    return page


def test_the_report_is_one_file_that_needs_no_network(week):
    text = week.read_text()
    assert not re.search(r"<script[^>]+src=", text)        # plotly.js is inside the file
    assert "Plotly.newPlot" in text and 'id="%s"' % TIMELINE_ID in text


def test_chromium_renders_the_timeline_and_a_screenshot(chromium, week, tmp_path):
    shot = tmp_path / "shot.png"
    proc = _run(chromium, tmp_path, week.as_uri(), "--screenshot=%s" % shot)
    assert proc.returncode == 0, proc.stderr[-2000:]
    image = imread(shot)
    assert image.shape[0] >= 1000 and image.std() > 0.05     # drawn, not a blank page
    body = _body(chromium, tmp_path, week.as_uri())
    assert body["report-ready"] == "1"
    dom = body["dom"]
    assert 'class="main-svg"' in dom and "radio burst" in dom and "state of charge" in dom
    assert int(body["burst-markers-drawn"]) > 1000              # 30 days of bursts every 30 min


def test_zooming_in_reveals_individual_radio_bursts(chromium, week, tmp_path):
    whole = _body(chromium, tmp_path, week.as_uri())
    # over the whole run the bursts are closer than 3 px: many are drawn on top of each other
    assert int(whole["burst-markers-apart"]) < int(whole["burst-markers-drawn"])
    zoomed = _body(chromium, tmp_path, week.as_uri() + "#t=3600,14400")
    drawn, apart = int(zoomed["burst-markers-drawn"]), int(zoomed["burst-markers-apart"])
    assert 5 <= drawn < int(whole["burst-markers-drawn"]) and apart == drawn


def test_a_report_can_open_zoomed(chromium, week, tmp_path):
    from iotbpf.report.export import load_report
    from iotbpf.report.html import write_html

    page = write_html(load_report(week.with_suffix(".json")), tmp_path / "six_hours.html", zoom_s=(0, 6 * 3600))
    body = _body(chromium, tmp_path, "file://" + page)
    assert int(body["burst-markers-drawn"]) >= 10 and body["burst-markers-apart"] == body["burst-markers-drawn"]


def test_a_comparison_report_puts_the_policies_side_by_side(chromium, tmp_path, cli):
    page = tmp_path / "compare.html"
    r = cli("simulate", "sensor_node", "--duration", "3d", "--samples", "24", "--compare", "always_on,batching",
            "--html", page)
    assert r.code == 0, r.err
    body = _body(chromium, tmp_path, page.as_uri())
    assert body["report-ready"] == "1"
    dom = body["dom"]
    assert "Policies side by side" in dom and "died day 1." in dom and "Breakdown: batching" in dom
    assert dom.count('class="main-svg"') >= 4
