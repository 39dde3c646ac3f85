"""CI proves the README's commands on a fresh machine: it runs them, as written, inside a virtual
environment it makes itself, after installing every outside tool the tests need."""

import re

import pytest

from conftest import REPO


def _readme_commands() -> list:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```sh\n(.*?)\n```", text, re.S)[:2]


def test_readme_starts_with_the_two_commands():
    first, second = _readme_commands()
    assert first == "pip install . && iotbpf simulate sensor_node"
    assert second == "pip install '.[test]' && pytest"


def test_ci_runs_the_readme_test_command_in_a_fresh_virtual_environment():
    script = (REPO / ".ci" / "run").read_text()
    lines = [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert lines[-1] == _readme_commands()[1]
    assert any(line.startswith("python3 -m venv") for line in lines)
    assert any(line.startswith(". ") and "/bin/activate" in line for line in lines)
    venv_at = next(i for i, line in enumerate(lines) if line.startswith("python3 -m venv"))
    assert venv_at < len(lines) - 1


def test_ci_installs_every_outside_tool_the_tests_require():
    script = (REPO / ".ci" / "run").read_text()
    for package in ("clang-19", "llvm-19", "mosquitto", "libbpf1", "bpftool", "chromium"):
        assert re.search(r"\b%s\b" % re.escape(package), script), package
    assert "npm ci" in script and "IOTBPF_REQUIRE_ALL=1" in script


def test_test_extra_refers_to_the_other_extras():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    others = sorted(name for name in extras if name != "test")
    refs = [req for req in extras["test"] if req.startswith("iotbpf[")]
    assert len(refs) == 1 and sorted(refs[0][len("iotbpf["):-1].split(",")) == others, refs
    repeated = {req for name in others for req in extras[name]} & set(extras["test"])
    assert not repeated, repeated
