"""The report schema family: the JSON Schema files shipped in iotbpf/report/schemas/ and the checks
against them (``iotbpf schema``). It only checks documents (docs/reports.md).
"""

from __future__ import annotations

import json
import os

from iotbpf.ebpf.errors import LoadError

VERSION = 2
KINDS = ("node-result", "comparison", "fleet", "monitor", "app-usage")
_FOLDER = os.path.join(os.path.dirname(__file__), "schemas")


def schema_name(kind: str) -> str:
    """The value of a document's ``schema`` field for ``kind`` (e.g. "iotbpf.node-result")."""
    return "iotbpf." + kind


def schema_path(kind: str) -> str:
    if kind not in KINDS:
        raise LoadError("unknown report kind %r (known: %s)" % (kind, ", ".join(KINDS)))
    return os.path.join(_FOLDER, kind + ".schema.json")


def load_schema(kind: str) -> dict:
    """The JSON Schema (draft 2020-12) of one report kind."""
    with open(schema_path(kind), encoding="utf-8") as f:
        return json.load(f)


def kind_of(document) -> str:
    """The kind of a report document, or LoadError naming what is wrong with its header."""
    if not isinstance(document, dict):
        raise LoadError("not a JSON object")
    name = document.get("schema")
    if name == "iotbpf.energy-report" or (name is None and "kind" in document):
        raise LoadError("this is a version-1 report (written by an older iotbpf); write it again with this one")
    if not isinstance(name, str) or not name.startswith("iotbpf.") or name[7:] not in KINDS:
        raise LoadError("schema is %r, expected one of %s" % (name, ", ".join(schema_name(k) for k in KINDS)))
    if document.get("version") != VERSION:
        raise LoadError("version %r is not supported (this iotbpf reads %d)" % (document.get("version"), VERSION))
    return name[7:]


def validate(document) -> str:
    """Check ``document`` against its shipped schema and that each series has one length; returns its kind."""
    import jsonschema

    kind = kind_of(document)
    validator = jsonschema.Draft202012Validator(load_schema(kind))
    error = next(iter(sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise LoadError("%s: %s" % (where, error.message))
    _check_series(document.get("series"), "series")
    for policy, node in (document.get("nodes") or {}).items() if kind == "comparison" else ():
        try:
            validate(node)
        except LoadError as exc:
            raise LoadError("nodes/%s: %s" % (policy, exc)) from None
    return kind


def _check_series(series, where: str) -> None:
    if not isinstance(series, dict) or not series:
        return
    lengths = {name: len(values) for name, values in series.items()}
    expected = lengths.get("t_s", max(lengths.values()))
    for name, length in sorted(lengths.items()):
        if length != expected:
            raise LoadError("%s/%s has %d values, t_s has %d (every series has one value per sample)"
                            % (where, name, length, expected))
