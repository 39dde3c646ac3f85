"""One vocabulary: every subcommand's --help runs, shared flags have the same names and metavars
everywhere, old synonyms are gone from the help, and every default is shown."""

from __future__ import annotations

import argparse
import re

import pytest

from iotbpf.cli import build_parser

# The same thing has one name: these must never appear in a help text again.
SYNONYMS = {"--node": "--node-name", "--ca": "--mqtt-ca", "--insecure": "--mqtt-insecure"}
MQTT_COMMANDS = ("simulate", "node", "monitor")
MQTT_FLAGS = ("--mqtt", "--mqtt-ca", "--mqtt-insecure", "--node-name", "--outbox")
# -o/--output names the file each command writes, so its metavar says the kind (OUT.bin, APP.ibpf, FILE.png)
METAVAR_NAMES_A_FILE_TYPE = ("--output",)


def _subparsers() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(sub: argparse.ArgumentParser) -> dict:
    """Visible option string -> (metavar, nargs) of one subcommand."""
    out = {}
    for action in sub._actions:
        if action.help == argparse.SUPPRESS:
            continue
        for flag in action.option_strings:
            if flag.startswith("--"):
                out[flag] = (action.metavar, action.nargs, type(action).__name__)
    return out


def test_every_subcommand_help_runs(cli):
    for name in _subparsers():
        with pytest.raises(SystemExit) as stop:
            cli(name, "--help")
        assert stop.value.code == 0, name


def test_shared_flags_have_one_name_and_one_metavar():
    subs = {name: _options(sub) for name, sub in _subparsers().items()}
    seen: dict[str, dict] = {}
    for name, options in subs.items():
        for flag, shape in options.items():
            seen.setdefault(flag, {})[name] = shape
    for flag, where in seen.items():
        if len(where) > 1:
            metavars = {shape[0] for shape in where.values()}
            kinds = {shape[2] for shape in where.values()}
            assert len(kinds) == 1, (flag, where)
            assert len(metavars) == 1 or flag in METAVAR_NAMES_A_FILE_TYPE, (flag, where)
    for name in MQTT_COMMANDS:
        assert set(MQTT_FLAGS) <= set(subs[name]), name
    assert "--mqtt-ca" in subs["listen"] and "--mqtt-insecure" in subs["listen"]


def test_old_synonyms_are_not_shown(cli, capsys):
    for name in _subparsers():
        with pytest.raises(SystemExit):
            cli(name, "--help")
        text = capsys.readouterr().out
        for old, new in SYNONYMS.items():
            assert not re.search(r"(^|[\s,\[])%s[\s=\]]" % re.escape(old), text), (name, old, new)


def test_every_default_is_shown_in_the_help():
    for name, sub in _subparsers().items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if (not action.option_strings or action.help == argparse.SUPPRESS
                    or action.default in (None, False, argparse.SUPPRESS) or isinstance(action.default, list)):
                continue
            shown = formatter._expand_help(action)   # the text --help prints for this option
            assert "default" in shown, (name, action.option_strings, shown)


def test_the_outbox_default_is_the_same_everywhere():
    subs = _subparsers()
    helps = {name: next(a.help for a in subs[name]._actions if "--outbox" in a.option_strings)
             for name in MQTT_COMMANDS}
    assert len(set(helps.values())) == 1, helps


def test_old_flag_names_still_work_for_scripts(cli, tmp_path):
    r = cli("plot", tmp_path / "missing.jsonl", "--node-name", "x")
    assert r.code == 2 and "cannot read" in r.err


def test_platform_rpi_refuses_a_machine_that_is_not_a_pi(tmp_path):
    import os

    from conftest import run_cli_subprocess

    model = "/proc/device-tree/model"
    if os.path.exists(model) and "Raspberry Pi" in open(model, errors="replace").read():
        pytest.skip("this machine is a Raspberry Pi")
    env = dict(os.environ)
    env.pop("GPIOZERO_PIN_FACTORY", None)
    proc = run_cli_subprocess("node", "sensor_node", "--platform", "rpi", "--duration", "200ms", cwd=tmp_path,
                              env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "not a Raspberry Pi" in proc.stderr and "GPIOZERO_PIN_FACTORY=mock" in proc.stderr
    env["GPIOZERO_PIN_FACTORY"] = "mock"   # chosen on purpose: runs with mock pins
    proc = run_cli_subprocess("node", "sensor_node", "--platform", "rpi", "--duration", "200ms", cwd=tmp_path,
                              env=env)
    assert proc.returncode == 0, proc.stderr
