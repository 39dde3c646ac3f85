"""JSON from outside with a size and a nesting limit, measured before parsing, so deep nesting is a
clean JsonLimitError (a ValueError), never a RecursionError. MicroPython-compatible."""

import json

_FINDITER = None
try:
    import sys

    if sys.implementation.name == "cpython":   # MicroPython's re has no finditer: the plain scan
        import re

        # A JSON string, or one bracket: strings are skipped whole (at C speed).
        _FINDITER = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]').finditer
except Exception:   # pragma: no cover - a port without sys.implementation or re
    _FINDITER = None

MAX_DEPTH = 64                    # no file or message of ours nests deeper than ~6
MAX_BYTES = 64 * 1024 * 1024      # files (traces, saved reports); messages pass smaller limits


class JsonLimitError(ValueError):
    """The document is too large or too deeply nested (or not JSON at all)."""


def nesting_depth(text, limit=MAX_DEPTH):
    """Whether JSON text nests ``[``/``{`` (outside strings) deeper than ``limit``: the result is
    > ``limit`` if so; otherwise it is <= ``limit`` (an upper bound of the depth when the text
    holds no more than ``limit`` brackets at all, else the exact depth)."""
    opens = text.count("[") + text.count("{")
    if opens <= limit:          # cannot nest deeper than the number of brackets
        return opens
    depth = deepest = 0
    if _FINDITER is not None:
        for m in _FINDITER(text):
            ch = m.group(0)
            if ch == "[" or ch == "{":
                depth += 1
                if depth > deepest:
                    deepest = depth
                    if deepest > limit:
                        return deepest
            elif ch == "]" or ch == "}":
                depth -= 1
        return deepest
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "[" or ch == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch == "]" or ch == "}":
            depth -= 1
    return deepest


def loads(text, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH):
    """``json.loads`` with limits: JsonLimitError if ``text`` (str or UTF-8 bytes) is longer than
    ``max_bytes``, nests deeper than ``max_depth``, or is not JSON."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        if len(text) > max_bytes:
            raise JsonLimitError("too large: %d bytes (limit %d)" % (len(text), max_bytes))
        try:
            text = bytes(text).decode("utf-8")
        except (UnicodeError, ValueError):
            raise JsonLimitError("not UTF-8 text") from None
    elif len(text) > max_bytes:
        raise JsonLimitError("too large: %d characters (limit %d)" % (len(text), max_bytes))
    if nesting_depth(text, max_depth) > max_depth:
        raise JsonLimitError("nested deeper than %d levels" % max_depth)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise JsonLimitError(str(exc) or "not valid JSON") from None
    except RuntimeError:        # RecursionError; the scan above should rule it out
        raise JsonLimitError("nested too deeply") from None
