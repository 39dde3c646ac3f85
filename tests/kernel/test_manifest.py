"""The app manifest schema: valid manifests load, every kind of mistake is a clear LoadError."""

import json

import pytest

from iotbpf.ebpf.errors import LoadError
from iotbpf.kernel import manifest
from iotbpf.kernel.clock import NS_PER_H, NS_PER_MIN


def base(**over):
    data = {"version": 1, "name": "demo", "object": "demo.o", "programs": {"timer": "timer"}}
    data.update(over)
    return data


def test_a_minimal_manifest_gets_the_defaults():
    m = manifest.Manifest(base())
    assert m.hooks == [("timer", "timer")]
    assert m.budget == manifest.DEFAULT_BUDGET
    assert (m.fault_max, m.fault_window_ns) == (3, NS_PER_H)


def test_timers_are_parsed_into_nanoseconds():
    m = manifest.Manifest(base(timers=[{"id": 2, "period": "1m", "jitter": "2s"}]))
    assert m.timer_specs == [(2, NS_PER_MIN, NS_PER_MIN, 2 * 10**9)]


def test_a_hook_may_run_several_sections_in_order():
    m = manifest.Manifest(base(programs={"radio_rx": ["a", "b"], "boot": "init"}))
    assert m.hooks == [("radio_rx", "a"), ("radio_rx", "b"), ("boot", "init")]


@pytest.mark.parametrize("data,message", [
    (base(version=2), "version: unsupported manifest version 2"),
    (base(programs={"nope": "x"}), "programs.nope: unknown hook"),
    (base(programs={}), "programs: must attach at least one program"),
    (base(budget=0), "budget: must be between"),
    (base(budget="10"), "budget: must be a JSON integer"),
    (base(timers=[{"period": "soon"}]), "timers[0].period: bad duration"),
    (base(timers=[{"period": "1s", "jitter": "2s"}]), "timers[0].jitter: must be smaller"),
    (base(faults={"max": 0}), "faults.max"),
    (base(extra=1), "extra: unknown field"),
    (base(name="a b"), "name: must be"),
    ({"version": 1, "name": "x", "programs": {"timer": "t"}}, "one of 'object' or 'bundle'"),
    ([1, 2], "must be a JSON object"),
])
def test_mistakes_are_reported_with_the_field_path(data, message):
    with pytest.raises(LoadError) as info:
        manifest.Manifest(data)
    assert message in str(info.value)
    assert str(info.value).startswith("app.json: ")


def test_invalid_json_is_a_load_error():
    with pytest.raises(LoadError, match="not valid JSON"):
        manifest.loads("{")


def test_load_resolves_files_beside_the_manifest(tmp_path):
    path = tmp_path / "app.json"
    path.write_text(json.dumps(base()))
    m = manifest.load(str(path))
    assert m.path(m.object) == str(tmp_path / "demo.o")


def test_every_bundled_app_manifest_is_valid():
    from conftest import REPO

    for path in sorted((REPO / "apps").glob("*/app.json")):
        m = manifest.load(str(path))
        assert m.name == path.parent.name
