"""The CLI's contract: one-line errors with exit code 2, a real example in every --help, no tracebacks."""

import pytest

from conftest import run_cli_subprocess
from iotbpf import __version__
from iotbpf.cli import COMMANDS, build_parser


def test_version_flag_prints_the_package_version():
    proc = run_cli_subprocess("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "iotbpf " + __version__


def test_unknown_subcommand_is_one_error_line_with_exit_2():
    proc = run_cli_subprocess("no-such-command")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr + proc.stdout


def test_unknown_option_is_one_error_line_with_exit_2():
    proc = run_cli_subprocess("--no-such-option")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


def test_no_command_prints_help_and_exits_2():
    proc = run_cli_subprocess()
    assert proc.returncode == 2
    assert "COMMAND" in proc.stdout


def _subcommand_names():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_every_registered_module_becomes_a_subcommand():
    assert len(_subcommand_names()) == len(COMMANDS)


@pytest.mark.parametrize("name", _subcommand_names())
def test_each_subcommand_help_shows_a_real_example(name):
    proc = run_cli_subprocess(name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "example:" in proc.stdout
    example_lines = proc.stdout.split("example:", 1)[1].strip().splitlines()
    assert example_lines and example_lines[0].strip().startswith("iotbpf " + name.split()[0])


@pytest.mark.parametrize("name", _subcommand_names())
def test_each_subcommand_rejects_an_unknown_option_in_one_line(name):
    proc = run_cli_subprocess(name, "--definitely-not-an-option")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_top_level_help_lists_every_subcommand():
    proc = run_cli_subprocess("--help")
    for name in _subcommand_names():
        assert name in proc.stdout
