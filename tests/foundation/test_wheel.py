"""The wheel carries the data folders, so bare names work after a plain `pip install .`; nothing
shipped carries the build machine's absolute paths."""

import re
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO

# A path as clang or a build tool writes it: a slash, then a folder name, at a word boundary.
_ABSOLUTE = re.compile(rb"(?:^|[\s\"'(=:])(/(?:home|root|work|tmp|usr|opt|srv|mnt|var|Users)/[\w.+-]+)")


def _strings(data: bytes, least: int = 4) -> list:
    """What `strings` prints: runs of printable ASCII of at least ``least`` bytes."""
    return re.findall(rb"[\x20-\x7e]{%d,}" % least, data)


def _absolute_paths(data: bytes) -> list:
    found = []
    for text in _strings(data):
        found += [m.group(1).decode() for m in _ABSOLUTE.finditer(text)]
    # MicroPython's virtual file system inside the device benchmark and tests is not a build path.
    return [p for p in found if not p.startswith(("/root/lib", "/root/app", "/root/pins"))]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(REPO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return next(out.glob("iotbpf-*.whl"))


def test_wheel_contains_apps_boards_energy_models_and_bench(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("apps", "boards", "energy_models", "bench"):
        assert any(n.startswith("iotbpf/_data/%s/" % kind) for n in names), kind
    for source in (REPO / "boards").glob("*.json"):
        assert "iotbpf/_data/boards/" + source.name in names
    for source in (REPO / "energy_models").glob("*.json"):
        assert "iotbpf/_data/energy_models/" + source.name in names


def test_wheel_carries_the_license_and_metadata(wheel):
    zf = zipfile.ZipFile(wheel)
    names = zf.namelist()
    assert any(n.endswith("/LICENSE") or n.endswith("licenses/LICENSE") for n in names), names
    meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    import iotbpf

    assert "Version: " + iotbpf.__version__ in meta
    assert "Project-URL: Changelog" in meta
    assert "License-Expression: MIT" in meta or "License: MIT" in meta


def test_nothing_in_the_wheel_carries_an_absolute_build_path(wheel):
    """Binaries carry no absolute path at all; text (help, docs) names no folder of this checkout."""
    zf = zipfile.ZipFile(wheel)
    build_folders = [str(REPO).encode(), (str(REPO.parent).rstrip("/") + "/").encode()]
    offenders = {}
    for name in zf.namelist():
        data = zf.read(name)
        paths = _absolute_paths(data) if name.endswith((".o", ".ibpf", ".mpy", ".so")) else []
        paths += [folder.decode() for folder in build_folders if folder != b"/" and folder in data]
        if paths:
            offenders[name] = sorted(set(paths))[:3]
    assert not offenders, offenders


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "apps").rglob("*")
                                        if p.suffix in (".o", ".ibpf")))
def test_shipped_objects_carry_no_absolute_path(path):
    data = (REPO / path).read_bytes()
    assert not _absolute_paths(data), path
    assert str(REPO).encode() not in data


def test_version_comes_from_one_place():
    import iotbpf

    proc = subprocess.run([sys.executable, "-m", "iotbpf", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "iotbpf " + iotbpf.__version__
    assert "## " + iotbpf.__version__ in (REPO / "CHANGELOG.md").read_text()
    assert 'dynamic = ["version"]' in (REPO / "pyproject.toml").read_text()
