"""The docs stay true: the CLI reference is regenerated and compared, and every code block marked
runnable (an HTML comment `<!-- run -->` on the line before its fence) runs and succeeds.

The runnable blocks of one page run in order in one fresh folder, as a reader following the
page would run them (a later block may use a file an earlier one wrote).
"""

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO
from iotbpf.cli import reference_markdown

DOCS = REPO / "docs"
FENCE = re.compile(r"<!-- run -->\n```(python|sh)\n(.*?)```", re.S)
PAGES = sorted(DOCS.glob("*.md")) + [REPO / "README.md"]


def blocks_of(path):
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(path.read_text())]


def test_cli_reference_is_up_to_date():
    expected = reference_markdown() + "\n"
    assert (DOCS / "cli.md").read_text() == expected, (
        "docs/cli.md is stale: regenerate it with "
        "python -c 'from iotbpf.cli import reference_markdown; print(reference_markdown())' > docs/cli.md")


def test_the_docs_have_runnable_blocks():
    assert sum(len(blocks_of(p)) for p in PAGES) >= 10


@pytest.mark.parametrize("path", [p for p in PAGES if blocks_of(p)], ids=lambda p: p.name)
def test_runnable_blocks_of_a_page_succeed_in_order(path, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", IOTBPF_DOCS_TEST="1")
    for index, (language, code) in enumerate(blocks_of(path)):
        command = [sys.executable, "-c", code] if language == "python" else ["bash", "-euo", "pipefail", "-c", code]
        proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, "%s, runnable block %d failed:\n%s\n--- stdout\n%s\n--- stderr\n%s" % (
            path.name, index + 1, code, proc.stdout[-3000:], proc.stderr[-3000:])
