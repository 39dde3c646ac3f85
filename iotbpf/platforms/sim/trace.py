"""Event traces: JSON lines ``{"t": "90s", "hook": "gpio", "pin": 2, "level": 1}`` replayed instead of
the generators (``iotbpf simulate --events FILE``). Every field is checked; nothing is trusted.
The format is documented in docs/platforms.md ("Usage traces") and docs/writing-apps.md.
"""

import json

from iotbpf.ebpf import boundedjson
from iotbpf.kernel.clock import parse_duration
from iotbpf.kernel.hooks import HOOKS

TRACE_VERSION = 1
MAX_EVENTS = 10000000
MAX_NAME = 256


def parse_events(text, where="events"):
    """List of (t_ns, hook, fields) sorted by time (stable), from JSON-lines text. ValueError on bad input."""
    events = []
    line_no = 0
    for line in text.splitlines():
        line_no += 1
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            obj = boundedjson.loads(line)
        except ValueError:
            raise ValueError("%s line %d: not valid JSON" % (where, line_no)) from None
        if not isinstance(obj, dict):
            raise ValueError("%s line %d: expected a JSON object" % (where, line_no))
        if "hook" not in obj and "version" in obj:
            if obj["version"] != TRACE_VERSION:
                raise ValueError("%s line %d: unsupported version %r (this iotbpf reads %d)"
                                 % (where, line_no, obj["version"], TRACE_VERSION))
            continue
        events.append(_event(obj, where, line_no))
        if len(events) > MAX_EVENTS:
            raise ValueError("%s: more than %d events" % (where, MAX_EVENTS))
    events.sort(key=lambda e: e[0])
    return events


def _event(obj, where, line_no):
    hook_name = obj.get("hook")
    hook = HOOKS.get(hook_name) if isinstance(hook_name, str) else None
    if hook is None or hook_name == "boot":
        raise ValueError("%s line %d: 'hook' must be one of %s" % (
            where, line_no, ", ".join(h for h in HOOKS if h != "boot")))
    if "t" not in obj:
        raise ValueError("%s line %d: missing 't' (a time like \"90s\")" % (where, line_no))
    try:
        t = parse_duration(obj["t"])
    except (ValueError, TypeError) as exc:
        raise ValueError("%s line %d: t: %s" % (where, line_no, exc)) from None
    fields = {}
    for key, value in obj.items():
        if key in ("t", "hook"):
            continue
        if key == "app" and hook_name == "app_usage":  # the app's name, for the host (not in the context)
            if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
                raise ValueError("%s line %d: app must be a name of 1 to %d characters" % (where, line_no, MAX_NAME))
            fields[key] = value
            continue
        try:
            f = hook.field(key)
        except KeyError:
            raise ValueError("%s line %d: hook %s has no field %r (fields: %s)" % (
                where, line_no, hook_name, key, ", ".join(hook.field_names))) from None
        if f.ctype.endswith("]"):
            if not isinstance(value, str):
                raise ValueError("%s line %d: %s must be a hex string" % (where, line_no, key))
            try:
                value = bytes.fromhex(value.replace(" ", ""))
            except ValueError:
                raise ValueError("%s line %d: %s must be a hex string" % (where, line_no, key)) from None
            value = value[: f.size]
        else:
            signed = f.ctype.startswith("s")
            bits = 8 * f.size
            lo = -(1 << (bits - 1)) if signed else 0
            hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError("%s line %d: %s must be an integer in [%d, %d]" % (
                    where, line_no, key, lo, hi))
        fields[key] = value
    return t, hook_name, fields


def format_events(events):
    """JSON-lines text of (t_ns, hook, fields) events, with the version header line."""
    lines = [json.dumps({"version": TRACE_VERSION, "format": "iotbpf-events"})]
    for t, hook, fields in events:
        obj = {"t": "%dns" % t, "hook": hook}
        for key in sorted(fields):
            value = fields[key]
            if isinstance(value, (bytes, bytearray)):
                value = bytes(value).hex()
            obj[key] = value
        lines.append(json.dumps(obj))
    return "\n".join(lines) + "\n"
