"""Pinned maps: a map saved to a file (written to PATH.tmp, then renamed; checksummed) and loaded
back, so a node that reboots keeps its state (format: docs/vm.md, "Inside")."""

import json
import os

from iotbpf.ebpf import boundedjson
from iotbpf.ebpf import types as T
from iotbpf.ebpf.checksum import fnv1a32
from iotbpf.ebpf.errors import LoadError

VERSION = 1
KIND = "iotbpf-pinned-map"
MAX_PIN_BYTES = 16 << 20


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def dumps(map_obj):
    """The pinned-file bytes for ``map_obj``."""
    spec = map_obj.spec.to_dict()
    spec.pop("data_len", None)
    body = json.dumps({"version": VERSION, "kind": KIND, "spec": spec,
                       "state": map_obj.export_state()}).encode("utf-8")
    return body + b"\nfnv1a32 " + ("%08x" % fnv1a32(body)).encode() + b"\n"


def pin_map(map_obj, path):
    """Write ``map_obj`` to ``path`` crash-safely (temporary file, flush, fsync, rename)."""
    data = dumps(map_obj)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        fsync = getattr(os, "fsync", None)
        if fsync is not None and hasattr(f, "fileno"):
            fsync(f.fileno())
    try:
        os.rename(tmp, path)
    except OSError:
        # some MicroPython filesystems refuse to rename over an existing file
        if _exists(path):
            os.remove(path)
        os.rename(tmp, path)


def read_pin(source):
    """``(MapSpec, state dict)`` from a pinned file path (or its bytes); LoadError if damaged."""
    if isinstance(source, (bytes, bytearray)):
        data, path = bytes(source), "<pinned map>"
    else:
        path = source
        from iotbpf.ebpf.loader.bundle import read_limited

        data = read_limited(path, MAX_PIN_BYTES, "pinned map")
    if len(data) > MAX_PIN_BYTES:
        raise LoadError("%s: pinned map larger than %d bytes" % (path, MAX_PIN_BYTES))
    cut = data.rfind(b"\nfnv1a32 ")
    if cut < 0:
        raise LoadError("%s: not a pinned map file, or truncated (no checksum line)" % path)
    body = data[:cut]
    tail = data[cut + 9:].strip()
    try:
        want = int(tail.decode(), 16)
    except (ValueError, UnicodeError):
        raise LoadError("%s: bad checksum line" % path) from None
    if want != fnv1a32(body):
        raise LoadError("%s: checksum mismatch: the pinned map is damaged" % path)
    try:
        doc = boundedjson.loads(body)
    except (ValueError, UnicodeError):
        raise LoadError("%s: pinned map is not valid JSON" % path) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise LoadError("%s: not a pinned map file" % path)
    if doc.get("version") != VERSION:
        raise LoadError("%s: pinned map version %r is not supported (this iotbpf reads version %d)"
                        % (path, doc.get("version"), VERSION))
    s = doc.get("spec")
    state = doc.get("state")
    if not isinstance(s, dict) or not isinstance(state, dict):
        raise LoadError("%s: pinned map lacks its spec or state" % path)
    try:
        spec = T.MapSpec(str(s["name"]), int(s["type"]), int(s["key_size"]), int(s["value_size"]),
                         int(s["max_entries"]), int(s.get("flags", 0)), key_type=s.get("key_type"),
                         value_type=s.get("value_type"), pinning=int(s.get("pinning", 0)),
                         section=s.get("section"), map_extra=int(s.get("map_extra", 0)))
    except (KeyError, ValueError, TypeError):
        raise LoadError("%s: pinned map spec is incomplete" % path) from None
    return spec, state


def load_pinned(path, budget=None):
    """A new Map with the contents of the pinned file at ``path``."""
    from iotbpf.ebpf.maps import create_map

    spec, state = read_pin(path)
    m = create_map(spec, budget)
    m.import_state(state)
    return m


def restore(map_obj, path):
    """Load the pinned contents at ``path`` into ``map_obj`` if the file exists; True if it did.

    The pinned map must have the same type, key and value sizes (LoadError otherwise); its
    max_entries may differ as long as the entries fit.
    """
    if not _exists(path):
        return False
    spec, state = read_pin(path)
    mine = map_obj.spec
    if (spec.type, spec.key_size, spec.value_size) != (mine.type, mine.key_size, mine.value_size):
        raise LoadError("pinned map %s (%s, key %d, value %d) does not match map %s (%s, key %d, value %d)"
                        % (path, spec.type_name, spec.key_size, spec.value_size, mine.name,
                           mine.type_name, mine.key_size, mine.value_size))
    map_obj.import_state(state)
    return True
