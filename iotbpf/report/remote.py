"""Signed remote commands for a node: map updates and over-the-air program updates (CPython only).

An operator signs a command with the node's key (HMAC-SHA256 over the exact body bytes) and a
counter larger than any the node accepted before; the node checks the size, then the signature
over the raw bytes *before parsing anything*, then (with size and depth limits) the body, its
expiry, counter, and the command against the map's key/value sizes and the app's manifest,
applies it, and answers on ``iotbpf/<node>/cmd/reply``. A command that is oversized, malformed,
unsigned, badly signed, expired, replayed or invalid must change nothing, not even the counter:
the counter is persisted only once a command passed every check, just before it takes effect.
No message, signed or not, can raise out of :meth:`CommandHandler.handle`: anything unexpected
becomes a refusal ("malformed: ...").

Wire format on ``iotbpf/<node>/cmd`` (version 2), bytes::

    iotbpf-cmd/2 <64 hex: HMAC-SHA256(key, BODY)> <id>\n<BODY: UTF-8 JSON object>

``<id>`` (1-64 of ``A-Za-z0-9_.-``) is only an echo token so an operator can match the reply of
a refused command; the signed body's ``id`` must equal it.

body (JSON object)::

    node     the node's name (a command for another node is refused)
    counter  integer, strictly greater than the last accepted one (anti-replay) and not above
             the node's wall clock in microseconds plus MAX_CLOCK_SKEW_S (so no accepted
             counter can lock later commands out for longer than that)
    expires  wall-clock time (Unix seconds) after which the node refuses the command
    id       the operator's id for this command (echoed in the reply), 1-64 chars
    op       "map_update" | "map_delete" | "map_lookup" | "program_update"
    map      map name                                   (map_* ops)
    key      hex string of exactly key_size bytes, or a non-negative integer (little-endian)
    value    same, value_size bytes                     (map_update)
    flags    "any" | "noexist" | "exist" (default "any") (map_update)
    section  program section to replace                 (program_update)
    bundle   base64 of an .ibpf bundle (iotbpf pack)    (program_update)
    program  which program of the bundle (default: the one whose section is ``section``)

Reply (report kind "cmd_reply"): {"id", "counter", "op", "ok": bool, "reason": str|null,
"result": {...}}. A program update that then faults ``rollback_faults`` times is rolled back
to the previous program and reported on ``iotbpf/<node>/faults`` (event "rollback").

The key file holds the key as hex (at least 16 bytes) and must not be readable by group or
others (refused otherwise). The last accepted counter is kept beside it
(:func:`counter_path_for`: ``<key file>.counter``, never in a temporary folder, so a reboot that
clears /tmp cannot re-open a replay), in a small JSON file written crash-safely (temporary file,
fsync, rename) before the command takes effect, so a crash can lose a command but never let it
be replayed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import queue
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

from iotbpf.ebpf import boundedjson
from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import IotbpfError

COMMAND_VERSION = 2
MAGIC = b"iotbpf-cmd/2 "
MAX_BODY_DEPTH = 4                # a command body is a flat object
MAX_CLOCK_SKEW_S = 300            # counters/expiry: how far the operator's clock may run ahead
DEFAULT_TTL_S = 300               # make_command: a command expires 5 minutes after signing
UNSIGNED_REPLY_BURST = 20         # replies to unsigned/garbage messages: a burst of 20 ...
UNSIGNED_REPLIES_PER_S = 1.0      # ... then one per second (the rest are only counted)
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_COMMAND_BYTES = 4096          # a map command on the wire
MAX_BUNDLE_BYTES = 256 * 1024     # a decoded .ibpf bundle
MAX_MESSAGE_BYTES = 4096 + (MAX_BUNDLE_BYTES * 4) // 3 + 4   # a program update on the wire
MIN_KEY_BYTES = 16
MAX_COUNTER = (1 << 63) - 1
OPS = ("map_update", "map_delete", "map_lookup", "program_update")
FLAGS = {"any": T.BPF_ANY, "noexist": T.BPF_NOEXIST, "exist": T.BPF_EXIST}
# Map types whose entries are plain key -> value pairs an operator may set.
KEY_VALUE_MAPS = (T.BPF_MAP_TYPE_HASH, T.BPF_MAP_TYPE_ARRAY, T.BPF_MAP_TYPE_PERCPU_HASH,
                  T.BPF_MAP_TYPE_PERCPU_ARRAY, T.BPF_MAP_TYPE_LRU_HASH, T.BPF_MAP_TYPE_LPM_TRIE)
_ERRNO_NAMES = {getattr(T, n): n for n in ("EPERM", "ENOENT", "E2BIG", "EBADF", "EAGAIN", "ENOMEM",
                                           "EFAULT", "EBUSY", "EEXIST", "EINVAL", "ENOSPC", "ERANGE",
                                           "EOPNOTSUPP")}
_ERRNO_TEXT = {"ENOENT": "no such key", "EEXIST": "key exists (flags noexist)", "E2BIG": "map is full",
               "EINVAL": "invalid argument", "ENOMEM": "out of memory"}


class CommandError(IotbpfError):
    """A key file or counter file problem (operator side or node set-up)."""


class Refused(Exception):
    """A command is refused; the message is the reason sent back in the reply."""


# --------------------------------------------------------------------------- keys and counters

def load_key(path: str | os.PathLike) -> bytes:
    """Read a per-node key file (hex text, at least 16 bytes)."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except OSError as exc:
        raise CommandError("cannot read key file %s: %s" % (os.fspath(path), exc.strerror)) from None
    except UnicodeDecodeError:
        raise CommandError("key file %s: not hex text" % os.fspath(path)) from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise CommandError("key file %s: not hex text" % os.fspath(path)) from None
    if len(key) < MIN_KEY_BYTES:
        raise CommandError("key file %s: key is %d bytes, at least %d needed"
                           % (os.fspath(path), len(key), MIN_KEY_BYTES))
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        raise CommandError("key file %s is readable or writable by others (mode %03o); "
                           "run: chmod 600 %s" % (os.fspath(path), mode, os.fspath(path)))
    return key


def counter_path_for(key_path: str | os.PathLike) -> str:
    """Where the node keeps its last accepted command counter: beside its key file."""
    return os.fspath(key_path) + ".counter"


def generate_key(path: str | os.PathLike) -> bytes:
    """Create a new random 32-byte key file readable only by its owner."""
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def _write_atomically(path: str, data: bytes) -> None:
    """Temporary file, fsync, rename, fsync the folder: a crash leaves the old or the new file."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class CounterStore:
    """The last accepted command counter, persisted crash-safely: {"version": 1, "counter": N}."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.value = 0
        if os.path.exists(self.path):
            try:
                with open(self.path, "rb") as f:
                    data = boundedjson.loads(f.read(4097), max_bytes=4096, max_depth=2)
            except (OSError, ValueError) as exc:
                raise CommandError("counter file %s is unreadable: %s" % (self.path, exc)) from None
            if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(
                    data.get("counter"), int) or isinstance(data["counter"], bool) or data["counter"] < 0:
                raise CommandError("counter file %s: expected {\"version\": 1, \"counter\": N}" % self.path)
            self.value = data["counter"]

    def advance(self, counter: int) -> None:
        """Persist ``counter`` as the last accepted one (before the command takes effect)."""
        _write_atomically(self.path, json.dumps({"version": 1, "counter": counter}).encode())
        self.value = counter


# --------------------------------------------------------------------------- operator side

def sign_command(key: bytes, body: dict) -> bytes:
    """The wire message for ``body`` signed with ``key`` (the operator's side)."""
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
    mac = hmac.new(key, raw, hashlib.sha256).hexdigest()
    token = body.get("id") if isinstance(body.get("id"), str) and _ID_RE.match(body["id"]) else "-"
    return MAGIC + ("%s %s\n" % (mac, token)).encode("ascii") + raw


def make_command(node: str, op: str, counter: int | None = None, command_id: str | None = None,
                 expires: float | None = None, ttl_s: float = DEFAULT_TTL_S, **fields) -> dict:
    """A command body; the counter defaults to the current time in microseconds (always grows),
    and the command expires ``ttl_s`` seconds from now unless ``expires`` (Unix time) is given."""
    now_ns = time.time_ns()
    body = {"node": node, "op": op, "counter": counter if counter is not None else now_ns // 1000,
            "id": command_id or secrets.token_hex(6),
            "expires": int(expires if expires is not None else now_ns / 1e9 + ttl_s)}
    for name, value in fields.items():
        if name == "bundle" and isinstance(value, (bytes, bytearray)):
            value = base64.b64encode(bytes(value)).decode("ascii")
        body[name] = value
    return body


# --------------------------------------------------------------------------- the node's side

class CommandHandler:
    """Checks and applies commands for one node; see the module docstring for the rules.

    ``target`` is the running app, seen through a small interface:

    - ``target.maps``: {name: map} with ``key_size``, ``value_size``, ``spec`` (``.type``,
      ``.readonly``), ``update(key, value, flags) -> 0|-errno``, ``lookup(key)``, ``delete(key)``;
    - ``target.remote_maps`` (optional): names an operator may change; default: every map that is
      a key/value map and not read-only for programs;
    - ``target.sections``: program sections the app's manifest attaches;
    - ``target.program(section)``, ``target.verify_program(section, program)`` (raises an
      IotbpfError such as VerifierError if the program is unsafe for that hook),
      ``target.replace_program(section, program)`` (atomic swap), ``target.fault_count(section)``
      (faults so far of whatever runs in that section).

    ``publish(kind, data)`` sends replies ("cmd_reply") and rollback reports ("faults").
    """

    def __init__(self, target, node: str, key: bytes, counter_path: str | os.PathLike,
                 publish: Callable[[str, dict], object] | None = None, rollback_faults: int = 3,
                 max_command_bytes: int = MAX_COMMAND_BYTES, max_bundle_bytes: int = MAX_BUNDLE_BYTES):
        if len(key) < MIN_KEY_BYTES:
            raise CommandError("command key must be at least %d bytes" % MIN_KEY_BYTES)
        self.target = target
        self.node = node
        self._key = key
        self.counter = CounterStore(counter_path)
        self.publish = publish
        self.rollback_faults = rollback_faults
        self.max_command_bytes = max_command_bytes
        self.max_bundle_bytes = max_bundle_bytes
        self.max_message_bytes = max_command_bytes + (max_bundle_bytes * 4) // 3 + 4
        self.replies: deque = deque(maxlen=100)   # the latest replies, for the node's own view
        self._watch: dict[str, tuple] = {}   # section -> (previous program, fault baseline, id)
        self._inbox: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self.refused = 0       # commands refused so far
        self.unanswered = 0    # refused unsigned messages left without a reply (rate limit)
        self._tokens = float(UNSIGNED_REPLY_BURST)
        self._tokens_at = time.monotonic()

    # -- entry points
    def submit(self, payload: bytes) -> None:
        """Queue a command from any thread (e.g. paho's); ``process_pending`` applies it."""
        self._inbox.put(bytes(payload))

    def process_pending(self) -> list[dict]:
        """Apply queued commands in the caller's thread (the node's loop); returns the replies."""
        out = []
        while True:
            try:
                payload = self._inbox.get_nowait()
            except queue.Empty:
                break
            out.append(self.handle(payload))
        out.extend(self.check_rollback())
        return out

    def handle(self, payload: bytes) -> dict:
        """Check and apply one command; publishes and returns the reply."""
        with self._lock:
            reply = {"id": None, "counter": None, "op": None, "ok": False, "reason": None, "result": {}}
            try:
                body = self._authenticate(payload, reply)
                action = self._prepare(body)
                # Everything checked: use the counter up (durably) before anything changes.
                self.counter.advance(body["counter"])
                reply["result"] = action()
                reply["ok"] = True
            except Refused as exc:
                reply["reason"] = str(exc)
            except OSError as exc:     # the node's own storage (the counter file), not the message
                reply["reason"] = "node error: cannot store the command counter in %s: %s" % (
                    self.counter.path, exc.strerror or exc)
            except Exception as exc:   # one error path: nothing a message holds may escape
                reply["reason"] = "malformed: %s" % (_clip(str(exc)) or type(exc).__name__)
            self.replies.append(reply)
            self.refused += 0 if reply["ok"] else 1
            # Replies to messages that were not even signed are rate-limited: a flood of garbage
            # must not become a flood of durable replies (each one an outbox write).
            quiet = reply["counter"] is None and not self._reply_allowed()
        if quiet:
            self.unanswered += 1
        elif self.publish is not None:
            self.publish("cmd_reply", reply)
        return reply

    def _reply_allowed(self) -> bool:
        now = time.monotonic()
        self._tokens = min(UNSIGNED_REPLY_BURST, self._tokens + (now - self._tokens_at) * UNSIGNED_REPLIES_PER_S)
        self._tokens_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def check_rollback(self) -> list[dict]:
        """Roll back program updates that faulted ``rollback_faults`` times; returns the reports."""
        reports = []
        with self._lock:
            for section, (previous, baseline, command_id) in list(self._watch.items()):
                faults = self.target.fault_count(section) - baseline
                if faults < self.rollback_faults:
                    continue
                self.target.replace_program(section, previous)
                del self._watch[section]
                reports.append({"event": "rollback", "section": section, "id": command_id,
                                "faults": faults,
                                "reason": "new program faulted %d times; previous program restored" % faults})
        for report in reports:
            if self.publish is not None:
                self.publish("faults", report)
        return reports

    # -- checks
    def _authenticate(self, payload: bytes, reply: dict) -> dict:
        if len(payload) > self.max_message_bytes:
            raise Refused("oversized: %d bytes (limit %d)" % (len(payload), self.max_message_bytes))
        if not payload.startswith(MAGIC):
            raise Refused("malformed: not an iotbpf-cmd/2 message")
        end = payload.find(b"\n", 0, len(MAGIC) + 64 + 1 + 64 + 1)
        if end < 0:
            raise Refused("malformed: no header line")
        try:
            header = payload[len(MAGIC):end].decode("ascii").split(" ")
        except UnicodeError:
            raise Refused("malformed: header is not ASCII") from None
        if len(header) != 2 or len(header[0]) != 64:
            raise Refused("malformed: header must be '<64 hex hmac> <id>'")
        mac, token = header
        if _ID_RE.match(token):
            reply["id"] = token
        raw = payload[end + 1:]
        # The signature is checked over the raw body bytes before anything of it is parsed.
        expected = hmac.new(self._key, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac.lower().encode("ascii"), expected.encode("ascii")):
            raise Refused("bad signature")
        try:
            body = boundedjson.loads(raw, max_bytes=self.max_message_bytes, max_depth=MAX_BODY_DEPTH)
        except ValueError as exc:
            raise Refused("malformed: body is not JSON (%s)" % _clip(str(exc))) from None
        if not isinstance(body, dict):
            raise Refused("malformed: body is not a JSON object")
        if body.get("id") != token:
            raise Refused("malformed: the header's id is not the body's")
        counter = body.get("counter")
        if not isinstance(counter, int) or isinstance(counter, bool) or not 0 < counter <= MAX_COUNTER:
            raise Refused("malformed: counter must be a positive integer")
        reply["counter"] = counter
        if body.get("node") != self.node:
            raise Refused("command is for node %s, this is %r" % (_clip(repr(body.get("node"))), self.node))
        now = time.time()
        expires = body.get("expires")
        if not isinstance(expires, (int, float)) or isinstance(expires, bool):
            raise Refused("malformed: expires must be a Unix time in seconds")
        if expires < now:
            raise Refused("expired: the command expired %.0f s ago" % (now - expires))
        if counter <= self.counter.value:
            raise Refused("replayed: counter %d is not above the last accepted %d"
                          % (counter, self.counter.value))
        # A counter far ahead of the clock (2^63-1, say) would refuse every later command.
        ceiling = int((now + MAX_CLOCK_SKEW_S) * 1_000_000)
        if counter > ceiling:
            raise Refused("counter %d is ahead of this node's clock (at most %d: the time in "
                          "microseconds + %d s)" % (counter, ceiling, MAX_CLOCK_SKEW_S))
        op = body.get("op")
        reply["op"] = op if isinstance(op, str) and op in OPS else None
        if op not in OPS:
            raise Refused("unknown op %s (known: %s)" % (_clip(repr(op)), ", ".join(OPS)))
        if op != "program_update" and len(payload) > self.max_command_bytes:
            raise Refused("oversized: %d bytes (limit %d for %s)"
                          % (len(payload), self.max_command_bytes, op))
        return body

    def _prepare(self, body: dict) -> Callable[[], dict]:
        """Validate everything; return the action that applies the command."""
        if body["op"] == "program_update":
            return self._prepare_program_update(body)
        map_obj, name = self._remote_map(body.get("map"))
        key = _bytes_field(body, "key", map_obj.key_size, name)
        if body["op"] == "map_lookup":
            def lookup() -> dict:
                value = map_obj.lookup(key)
                return {"map": name, "key": key.hex(), "value": None if value is None else bytes(value).hex()}
            return lookup
        if body["op"] == "map_delete":
            def delete() -> dict:
                _check_errno(map_obj.delete(key), name)
                return {"map": name, "key": key.hex()}
            return delete
        value = _bytes_field(body, "value", map_obj.value_size, name)
        flags = body.get("flags", "any")
        if not isinstance(flags, str) or flags not in FLAGS:
            raise Refused("malformed: flags must be one of %s" % ", ".join(FLAGS))

        def update() -> dict:
            _check_errno(map_obj.update(key, value, FLAGS[flags]), name)
            return {"map": name, "key": key.hex(), "value": value.hex()}
        return update

    def _remote_map(self, name):
        if not isinstance(name, str) or not name:
            raise Refused("malformed: no map name")
        maps = self.target.maps
        if name not in maps:
            raise Refused("no map %r in this app (maps: %s)" % (name, ", ".join(sorted(maps))))
        map_obj = maps[name]
        allowed = getattr(self.target, "remote_maps", None)
        if allowed is not None and name not in allowed:
            raise Refused("map %r may not be changed remotely (the manifest allows: %s)"
                          % (name, ", ".join(sorted(allowed)) or "none"))
        spec = getattr(map_obj, "spec", None)
        if spec is not None and (spec.readonly or spec.type not in KEY_VALUE_MAPS):
            raise Refused("map %r is %s; only writable key/value maps can be changed remotely"
                          % (name, "read-only" if spec.readonly else "not a key/value map"))
        return map_obj, name

    def _prepare_program_update(self, body: dict) -> Callable[[], dict]:
        section = body.get("section")
        sections = list(self.target.sections)
        if not isinstance(section, str) or section not in sections:
            raise Refused("section %r is not attached by this app (sections: %s)"
                          % (section, ", ".join(sections)))
        encoded = body.get("bundle")
        if not isinstance(encoded, str):
            raise Refused("malformed: no bundle")
        if len(encoded) > (self.max_bundle_bytes * 4) // 3 + 4:
            raise Refused("oversized: bundle is larger than %d bytes" % self.max_bundle_bytes)
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise Refused("malformed: bundle is not base64") from None
        program = _load_bundle_program(data, body.get("program", section))
        try:
            self.target.verify_program(section, program)
        except IotbpfError as exc:
            raise Refused("verifier rejected the program: %s" % exc) from None

        def replace() -> dict:
            previous = self.target.program(section)
            self.target.replace_program(section, program)
            self._watch[section] = (previous, self.target.fault_count(section), body.get("id"))
            return {"section": section, "instructions": len(getattr(program, "insns", ()) or ()),
                    "bundle_sha256": hashlib.sha256(data).hexdigest()}
        return replace


def _load_bundle_program(data: bytes, wanted):
    """The program for section ``wanted`` from .ibpf bundle bytes (the bundle's only one if it
    has a single program)."""
    from iotbpf.ebpf.loader import bundle

    try:
        loaded = bundle.load_bundle_object(data)
    except IotbpfError as exc:
        raise Refused("bad bundle: %s" % exc) from None
    try:
        return loaded.program(wanted if len(loaded.programs) != 1 else None)
    except IotbpfError as exc:
        raise Refused("bad bundle: %s" % exc) from None


def _clip(text: str, limit: int = 120) -> str:
    """A message's text inside a reason: bounded, so a reply is never larger than a command."""
    return text if len(text) <= limit else text[:limit] + "..."


def _bytes_field(body: dict, field: str, size: int, map_name: str) -> bytes:
    value = body.get(field)
    if isinstance(value, bool) or value is None:
        raise Refused("malformed: no %s" % field)
    if isinstance(value, int):
        if value < 0 or value >= 1 << (8 * size):
            raise Refused("%s %d does not fit map %r's %d-byte %ss" % (field, value, map_name, size, field))
        return value.to_bytes(size, "little")
    if not isinstance(value, str):
        raise Refused("malformed: %s must be a hex string or an integer" % field)
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise Refused("malformed: %s is not hex" % field) from None
    if len(data) != size:
        raise Refused("%s is %d bytes, map %r takes %d-byte %ss" % (field, len(data), map_name, size, field))
    return data


def _check_errno(rc, map_name: str) -> None:
    if isinstance(rc, int) and rc < 0:
        name = _ERRNO_NAMES.get(-rc, "errno %d" % -rc)
        raise Refused("map %r refused the change: %s (%s)" % (map_name, name, _ERRNO_TEXT.get(name, name)))
