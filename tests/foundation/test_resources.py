"""Bundled apps, boards and energy models resolve by bare name from any directory; paths still work."""

import pytest

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.resources import available, data_root, resolve


def test_data_roots_exist_for_every_kind():
    for kind in ("apps", "boards", "energy_models", "bench"):
        assert data_root(kind).is_dir(), kind


def test_bare_names_resolve_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for app in available("apps"):
        assert resolve("apps", app).is_dir()
    for board in available("boards", ".json"):
        assert resolve("boards", board, ".json").is_file()


def test_a_path_is_used_as_given(tmp_path):
    board = tmp_path / "my_board.json"
    board.write_text("{}")
    assert resolve("boards", str(board), ".json") == board


def test_unknown_name_gives_a_clear_error_listing_the_bundled_ones():
    with pytest.raises(IotbpfError, match="unknown board 'no_such_board'"):
        resolve("boards", "no_such_board", ".json")


def test_missing_path_gives_a_clear_error(tmp_path):
    with pytest.raises(IotbpfError, match="not found"):
        resolve("boards", str(tmp_path / "missing.json"), ".json")
