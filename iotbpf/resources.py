"""Find bundled data (apps, boards, energy models, bench programs) by bare name or path.

Host-side only. In a wheel the top-level data folders are installed as ``iotbpf/_data/<kind>``;
in a source checkout they are read from the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

from iotbpf.ebpf.errors import IotbpfError

KINDS = ("apps", "boards", "energy_models", "bench")


def data_root(kind: str) -> Path:
    """The folder that holds bundled data of ``kind`` (one of KINDS)."""
    if kind not in KINDS:
        raise ValueError("unknown data kind " + repr(kind))
    packaged = Path(__file__).resolve().parent / "_data" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / kind


def resolve(kind: str, name_or_path: str | os.PathLike, suffix: str = "") -> Path:
    """Resolve a bare bundled name (``sensor_node``) or a path to an existing file or folder.

    A value containing a path separator, or that exists as given, is used as a path.
    Otherwise it is looked up among the bundled ``kind`` entries (``name`` or ``name + suffix``).
    """
    text = os.fspath(name_or_path)
    given = Path(text)
    looks_like_path = os.sep in text or "/" in text or given.exists()
    if looks_like_path:
        if not given.exists():
            raise IotbpfError("%s not found: %s" % (kind.rstrip("s").replace("_", " "), text))
        return given
    root = data_root(kind)
    for candidate in (root / text, root / (text + suffix)):
        if candidate.exists():
            return candidate
    known = ", ".join(available(kind, suffix)) or "none"
    raise IotbpfError(
        "unknown %s %r (bundled: %s)" % (kind.rstrip("s").replace("_", " "), text, known)
    )


def available(kind: str, suffix: str = "") -> list[str]:
    """Names of the bundled entries of ``kind`` (files with ``suffix``, or folders)."""
    root = data_root(kind)
    if not root.is_dir():
        return []
    names = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")) or entry.name == "include":
            continue
        if suffix and entry.is_file() and entry.name.endswith(suffix):
            names.append(entry.name[: -len(suffix)])
        elif not suffix and entry.is_dir():
            names.append(entry.name)
    return names
