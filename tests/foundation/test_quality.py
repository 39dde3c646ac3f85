"""The architecture and style rules are checked, not hoped for: import-linter contracts and ruff."""

import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def test_import_linter_contracts_hold():
    lint_imports = shutil.which("lint-imports")
    if lint_imports is None:
        pytest.fail("import-linter is part of the test extra and must be installed")
    proc = subprocess.run([lint_imports, str(REPO / "pyproject.toml")], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "iotbpf", "tests", "bench",
                           "examples"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
