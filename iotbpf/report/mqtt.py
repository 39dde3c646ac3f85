"""MQTT reporting for iotbpf nodes on paho-mqtt 2.x (v2 callback API), CPython only: a Publisher that
sends through the durable outbox, a Receiver that drops duplicates, and Home Assistant discovery.
Topics, the ``iotbpf.report`` payload and the delivery guarantees: docs/mqtt.md.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from iotbpf.ebpf import boundedjson
from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report.outbox import Deduplicator, Outbox

SCHEMA = "iotbpf.report"
SCHEMA_VERSION = 1
TOPIC_ROOT = "iotbpf"
REPORT_KINDS = ("battery", "energy", "apps", "faults", "cmd_reply")
# Topic suffix per report kind.
KIND_TOPIC = {"battery": "battery", "energy": "energy", "apps": "apps", "faults": "faults",
              "cmd_reply": "cmd/reply"}
TOPIC_KIND = {v: k for k, v in KIND_TOPIC.items()}
ONLINE = "online"
OFFLINE = "offline"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_NODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_REPORT_BYTES = 256 * 1024     # a received report (ours are < 4 KiB)
MAX_INVALID_KEPT = 100            # Receiver.invalid keeps the first ones; invalid_count counts all
MAX_NODES = 10000                 # nodes a Receiver tracks (topics name them: anyone can invent more)
# Required keys of ``data`` per kind, with the JSON types they may have.
_NUMBER = (int, float)
_REQUIRED = {
    "battery": {"soc_percent": _NUMBER, "lifetime_days": _NUMBER + (type(None),)},
    "energy": {"power_w": _NUMBER, "energy_j": _NUMBER},
    "apps": {"apps": (dict,)},
    "faults": {"event": (str,)},
    "cmd_reply": {"ok": (bool,), "reason": (str, type(None))},
}


class MqttError(IotbpfError):
    """Bad MQTT URL or options (exit 2)."""


class ReportFormatError(IotbpfError):
    """A received payload does not follow the report schema."""


# --------------------------------------------------------------------------- URLs and topics

class BrokerURL:
    """A parsed ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://...`` URL."""

    __slots__ = ("scheme", "host", "port", "username", "password")

    def __init__(self, scheme: str, host: str, port: int, username: str | None, password: str | None):
        self.scheme = scheme
        self.host = host
        self.port = port
        self.username = username
        self.password = password

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def __repr__(self) -> str:
        user = ""
        if self.username is not None:
            user = self.username + ("" if self.password is None else ":***") + "@"
        return "%s://%s%s:%d" % (self.scheme, user, self.host, self.port)


def parse_url(url: str) -> BrokerURL:
    """Parse an MQTT broker URL; raises MqttError with the reason for anything malformed."""
    if not isinstance(url, str) or not url:
        raise MqttError("MQTT URL is empty (expected mqtt://[user[:password]@]host[:port])")
    if "://" not in url:
        raise MqttError("bad MQTT URL %r: expected mqtt://[user[:password]@]host[:port] or mqtts://..."
                        % url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MqttError("bad MQTT URL %r: %s" % (url, exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise MqttError("bad MQTT URL %r: scheme must be mqtt:// or mqtts://, not %s://" % (url, scheme))
    if not parts.hostname:
        raise MqttError("bad MQTT URL %r: no host" % url)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise MqttError("bad MQTT URL %r: unexpected path or query after host[:port]" % url)
    if port == 0:
        raise MqttError("bad MQTT URL %r: port must be 1..65535" % url)
    username = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    if username == "" and password is not None:
        raise MqttError("bad MQTT URL %r: password without a user name" % url)
    return BrokerURL(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], username or None, password)


def check_node_name(node: str) -> str:
    """Node names become topic levels: letters, digits, '_', '-', '.' only (no '/', '+', '#')."""
    if not isinstance(node, str) or not _NODE_RE.match(node):
        raise MqttError("bad node name %r: use 1-64 letters, digits, '_', '-' or '.'" % (node,))
    return node


def topic(node: str, suffix: str) -> str:
    """``iotbpf/<node>/<suffix>`` (suffix: status, battery, energy, apps, faults, cmd, cmd/reply)."""
    return "%s/%s/%s" % (TOPIC_ROOT, check_node_name(node), suffix)


def split_topic(name: str) -> tuple[str, str] | None:
    """(node, suffix) for an ``iotbpf/<node>/<suffix>`` topic, else None."""
    parts = name.split("/", 2)
    if len(parts) != 3 or parts[0] != TOPIC_ROOT or not _NODE_RE.match(parts[1]):
        return None
    return parts[1], parts[2]


# --------------------------------------------------------------------------- payloads

def make_payload(node: str, kind: str, stream: str, seq: int, ts_ns: int, clock: str, data: dict) -> bytes:
    """Encode one report (schema iotbpf.report v1) as compact UTF-8 JSON."""
    if kind not in REPORT_KINDS:
        raise MqttError("unknown report kind %r (known: %s)" % (kind, ", ".join(REPORT_KINDS)))
    if clock not in ("virtual", "real"):
        raise MqttError("clock must be 'virtual' or 'real'")
    obj = {"schema": SCHEMA, "version": SCHEMA_VERSION, "node": node, "kind": kind, "stream": stream,
           "seq": int(seq), "ts_ns": int(ts_ns), "clock": clock, "data": data}
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def parse_payload(payload: bytes) -> dict:
    """Decode and validate a report; raises ReportFormatError naming what is wrong (size and
    nesting are bounded: MAX_REPORT_BYTES, boundedjson.MAX_DEPTH)."""
    try:
        obj = boundedjson.loads(payload, max_bytes=MAX_REPORT_BYTES)
    except ValueError as exc:
        raise ReportFormatError("report is not UTF-8 JSON: %s" % exc) from None
    if not isinstance(obj, dict):
        raise ReportFormatError("report is not a JSON object")
    if obj.get("schema") != SCHEMA:
        raise ReportFormatError("report schema is %r, expected %r" % (obj.get("schema"), SCHEMA))
    if obj.get("version") != SCHEMA_VERSION:
        raise ReportFormatError("report version %r is not supported (this iotbpf reads %d)"
                                % (obj.get("version"), SCHEMA_VERSION))
    for key, types in (("node", (str,)), ("kind", (str,)), ("stream", (str,)), ("seq", (int,)),
                       ("ts_ns", (int,)), ("clock", (str,)), ("data", (dict,))):
        if key not in obj:
            raise ReportFormatError("report has no %r" % key)
        if not isinstance(obj[key], types) or isinstance(obj[key], bool):
            raise ReportFormatError("report field %r has the wrong type" % key)
    if obj["kind"] not in REPORT_KINDS:
        raise ReportFormatError("unknown report kind %r" % obj["kind"])
    if obj["seq"] < 1:
        raise ReportFormatError("report seq must be >= 1")
    for key, types in _REQUIRED[obj["kind"]].items():
        value = obj["data"].get(key, KeyError)
        if value is KeyError:
            raise ReportFormatError("%s report has no data.%s" % (obj["kind"], key))
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ReportFormatError("%s report: data.%s has the wrong type" % (obj["kind"], key))
    return obj


def _version() -> str:
    # Not ``from iotbpf import __version__``: report/ must not import the package's API layer.
    import importlib.metadata

    try:
        return importlib.metadata.version("iotbpf")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# What Home Assistant gets for each announced sensor: (key, name, report topic, unit, device class,
# state class, display precision, template). Each is announced only by a publisher that sends it.
HA_SENSORS = {
    "battery": ("Battery", "battery", "%", "battery", "measurement", 2, "{{ value_json.data.soc_percent }}"),
    "power": ("Power", "energy", "W", "power", "measurement", 6, "{{ value_json.data.power_w }}"),
    # Wh: the unit every Home Assistant release takes for the Energy dashboard (reports carry J)
    "energy": ("Energy", "energy", "Wh", "energy", "total_increasing", 6, "{{ value_json.data.energy_j / 3600 }}"),
    "lifetime": ("Battery lifetime", "battery", "d", "duration", "measurement", 1,
                 "{{ value_json.data.lifetime_days }}"),
}
# The clock of the report and its own timestamp, as attributes: a simulated year arrives in seconds, and a
# dashboard must be able to tell (Home Assistant records states at wall-clock time).
HA_ATTRIBUTES = ('{"simulated": {{ (value_json.clock == "virtual") | tojson }}, '
                 '"clock": {{ value_json.clock | tojson }}, "node_time_s": {{ value_json.ts_ns / 1e9 }}, '
                 '"seq": {{ value_json.seq }}}')


def discovery_configs(node: str, prefix: str = "homeassistant", model: str = "iotbpf node",
                      sensors: tuple = ("battery", "power", "energy", "lifetime"), apps: tuple = (),
                      simulated: bool = False) -> dict:
    """Home Assistant MQTT discovery: {config topic: config dict} for the ``sensors`` this node publishes
    (battery %, power, energy for the Energy dashboard, predicted lifetime) and one energy sensor per app
    in ``apps``. Current schema: ``default_entity_id``, an ``availability`` list, display precision."""
    check_node_name(node)
    object_node = re.sub(r"[^A-Za-z0-9_-]", "_", node)
    device = {"identifiers": ["iotbpf_" + object_node], "name": node, "manufacturer": "iotbpf",
              "model": model + (" (simulated)" if simulated else ""), "sw_version": _version()}
    entries = [(key,) + HA_SENSORS[key] for key in sensors]
    for app in apps:
        key = "app_" + re.sub(r"[^A-Za-z0-9_]", "_", str(app))
        entries.append((key, "Energy of %s" % app, "apps", "Wh", "energy", "total_increasing", 6,
                        "{{ value_json.data.apps[%s].energy_j / 3600 }}" % json.dumps(str(app))))
    configs = {}
    for key, name, suffix, unit, device_class, state_class, precision, template in entries:
        unique = "iotbpf_%s_%s" % (object_node, key)
        config = configs["%s/sensor/iotbpf_%s/%s/config" % (prefix, object_node, key)] = {
            "name": name,
            "unique_id": unique,
            "default_entity_id": "sensor." + unique,
            "state_topic": topic(node, suffix),
            "value_template": template,
            "json_attributes_topic": topic(node, suffix),
            "json_attributes_template": HA_ATTRIBUTES,
            "unit_of_measurement": unit,
            "device_class": device_class,
            "state_class": state_class,
            "suggested_display_precision": precision,
            "availability": [{"topic": topic(node, "status"), "payload_available": ONLINE,
                              "payload_not_available": OFFLINE}],
            "device": device,
        }
        if device_class == "power":   # a node draws µW to mW: shown in mW, stored in W
            config["suggested_unit_of_measurement"] = "mW"
    return configs


# --------------------------------------------------------------------------- client set-up

def _make_client(url: BrokerURL, client_id: str, clean_session: bool, keepalive: float,
                 reconnect_min: float, reconnect_max: float, ca_certs: str | None,
                 certfile: str | None, keyfile: str | None, tls_insecure: bool,
                 username: str | None, password: str | None) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                         protocol=paho.MQTTv311)
    client.reconnect_delay_set(reconnect_min, reconnect_max)
    user = username if username is not None else url.username
    pw = password if password is not None else url.password
    if user is not None:
        client.username_pw_set(user, pw)
    if url.tls or ca_certs or certfile:
        for label, path in (("CA file", ca_certs), ("certificate", certfile), ("key file", keyfile)):
            if path is not None and not os.path.isfile(path):
                raise MqttError("TLS %s not found: %s" % (label, path))
        try:
            client.tls_set(ca_certs=ca_certs, certfile=certfile, keyfile=keyfile,
                           cert_reqs=ssl.CERT_NONE if tls_insecure else ssl.CERT_REQUIRED)
        except (ssl.SSLError, ValueError, OSError) as exc:
            raise MqttError("TLS set-up failed: %s" % exc) from None
        if tls_insecure:
            client.tls_insecure_set(True)
    return client


def _connect(client: paho.Client, url: BrokerURL, keepalive: float) -> None:
    client.connect_async(url.host, url.port, keepalive=max(1, int(round(keepalive))))
    client.loop_start()


# --------------------------------------------------------------------------- publisher

class Publisher:
    """Publishes a node's reports through a durable outbox; reconnects by itself.

    ``report(kind, data, ts_ns)`` returns at once with the report's sequence number, after the
    report is safely in the outbox; a background thread hands outbox rows to paho (at most
    ``window`` at a time) and deletes them when paho's ``on_publish`` confirms the broker's
    PUBACK for that message id. Commands arriving on ``iotbpf/<node>/cmd`` are passed to
    ``on_command(payload: bytes)`` (the node subscribes with a persistent session, so commands
    sent while it was offline still arrive).
    """

    def __init__(self, url: str, node: str, outbox: Outbox | str | os.PathLike, *,
                 clock: str = "real", keepalive: float = 30, reconnect_min: float = 0.5,
                 reconnect_max: float = 30.0, window: int = 64, discovery: bool = True,
                 discovery_prefix: str = "homeassistant", model: str = "iotbpf node",
                 announce: tuple = ("battery", "power", "energy", "lifetime"), apps: tuple = (),
                 ca_certs: str | None = None, certfile: str | None = None, keyfile: str | None = None,
                 tls_insecure: bool = False, username: str | None = None, password: str | None = None,
                 client_id: str | None = None,
                 on_command: Callable[[bytes], None] | None = None):
        self.url = parse_url(url)
        self.node = check_node_name(node)
        if clock not in ("virtual", "real"):
            raise MqttError("clock must be 'virtual' or 'real'")
        self.clock = clock
        self._own_outbox = not isinstance(outbox, Outbox)
        self.outbox = Outbox(outbox) if self._own_outbox else outbox
        self.keepalive = keepalive
        self.window = max(1, int(window))
        self.discovery = discovery
        self.discovery_prefix = discovery_prefix
        self.model = model
        self.announce = tuple(announce)   # the Home Assistant sensors this publisher really feeds
        self.apps = tuple(apps)
        self.on_command = on_command
        self.last_error: str | None = None
        self.acked = 0
        self.connects = 0
        self.undelivered: int | None = None   # reports left in the outbox by close()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._inflight: dict[int, int] = {}   # paho mid -> outbox row id
        self._early: set[int] = set()         # mids acknowledged before publish() returned
        self._direct: set[int] = set()        # mids of status/discovery messages (not in the outbox)
        self._app_configs: dict = {}          # per-app energy sensors announced (iotbpf.report.apps)
        self._acked_rows: list[int] = []      # acknowledged, not yet deleted from the outbox
        self._handed = 0                      # highest row id handed to paho
        self._stopping = False
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self.client = _make_client(self.url, client_id or "iotbpf-node-" + node, False, keepalive,
                                   reconnect_min, reconnect_max, ca_certs, certfile, keyfile, tls_insecure,
                                   username, password)
        self.client.will_set(topic(node, "status"), OFFLINE, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    # -- lifecycle
    def start(self) -> Publisher:
        """Connect in the background (the broker may be down) and start delivering the outbox."""
        self._thread = threading.Thread(target=self._pump_loop, name="iotbpf-outbox-" + self.node,
                                        daemon=True)
        self._thread.start()
        try:
            _connect(self.client, self.url, self.keepalive)
        except (OSError, ValueError) as exc:
            raise MqttError("cannot connect to %r: %s" % (self.url, exc)) from None
        return self

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def report(self, kind: str, data: dict, ts_ns: int | None = None) -> int:
        """Store one report durably and schedule it for publishing; returns its sequence number."""
        if kind not in KIND_TOPIC:
            raise MqttError("unknown report kind %r (known: %s)" % (kind, ", ".join(REPORT_KINDS)))
        if ts_ns is None:
            if self.clock == "virtual":
                raise MqttError("a virtual-clock publisher needs ts_ns for every report")
            ts_ns = time.time_ns()
        stream = self.outbox.stream
        _, seq = self.outbox.append(
            topic(self.node, KIND_TOPIC[kind]),
            lambda s: make_payload(self.node, kind, stream, s, ts_ns, self.clock, data),
            self.node)
        self._wake.set()
        if kind == "apps" and self.discovery:
            self._announce_apps(data.get("apps") or {})
        return seq

    def _announce_apps(self, apps: dict) -> None:
        """Home Assistant discovery for apps not announced yet (again on every connect)."""
        from iotbpf.report.apps import discovery_configs as app_configs

        for name in apps:
            if name in self._app_configs:
                continue
            config_topic, config = next(iter(app_configs(self.node, [name], self.discovery_prefix).items()))
            self._app_configs[name] = (config_topic, config)
            if self.connected:
                info = self.client.publish(config_topic, json.dumps(config, sort_keys=True), qos=1, retain=True)
                with self._lock:
                    self._direct.add(info.mid)

    def pending(self) -> int:
        """Reports not yet acknowledged by the broker (in the outbox)."""
        # Under the lock, so a batch being deleted is never counted as gone twice.
        with self._lock:
            return self.outbox.count() - len(self._acked_rows)

    def flush(self, timeout: float) -> bool:
        """Wait until the broker acknowledged every report; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self.pending() == 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._wake.set()
            time.sleep(min(0.02, remaining))

    def close(self, timeout: float = 5.0) -> bool:
        """Flush (up to ``timeout``), mark the node offline, disconnect. True if all was delivered."""
        delivered = self.flush(timeout) if self.connected else self.pending() == 0
        if self.connected:
            # Never hold self._lock across publish(): paho calls on_publish with its own lock held.
            info = self.client.publish(topic(self.node, "status"), OFFLINE, qos=1, retain=True)
            with self._lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                else:
                    self._direct.add(info.mid)
            try:
                info.wait_for_publish(timeout=min(2.0, max(timeout, 0.1)))
            except (RuntimeError, ValueError):
                pass
        self._stop_threads()
        return delivered

    def _stop_threads(self) -> None:
        self._stopping = True
        self._wake.set()
        self.client.disconnect()
        self.client.loop_stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            acked, self._acked_rows = self._acked_rows, []
            self.outbox.ack(acked)
        self.undelivered = self.outbox.count()
        if self._own_outbox:
            self.outbox.close()

    # -- paho callbacks (paho's network thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = "broker refused the connection: %s" % reason_code
            return
        self.connects += 1
        self.last_error = None
        # Their PUBACKs are handled by this same thread after this callback returns, so the
        # mids are recorded before any acknowledgement can arrive.
        direct = [client.publish(topic(self.node, "status"), ONLINE, qos=1, retain=True)]
        if self.discovery:
            for config_topic, config in discovery_configs(self.node, self.discovery_prefix, self.model,
                                                          self.announce, self.apps,
                                                          self.clock == "virtual").items():
                direct.append(client.publish(config_topic, json.dumps(config, sort_keys=True), qos=1,
                                             retain=True))
            for config_topic, config in list(self._app_configs.values()):
                direct.append(client.publish(config_topic, json.dumps(config, sort_keys=True), qos=1,
                                             retain=True))
        with self._lock:
            self._direct.update(info.mid for info in direct)
        if self.on_command is not None:
            client.subscribe(topic(self.node, "cmd"), qos=1)
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if reason_code.is_failure and was_connected:   # keep a refusal's reason (bad password...)
            self.last_error = "disconnected: %s" % reason_code

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Called with paho's message lock held: only record the acknowledgement here.
        with self._lock:
            row = self._inflight.pop(mid, None)
            if row is not None:
                self._acked_rows.append(row)
            elif mid in self._direct:
                self._direct.discard(mid)
            else:   # an outbox row whose publish() has not returned yet: the pump claims it
                self._early.add(mid)
        self._wake.set()

    def _on_message(self, client, userdata, message) -> None:
        if self.on_command is not None and message.topic == topic(self.node, "cmd"):
            self.on_command(bytes(message.payload))

    # -- delivery thread
    def _pump_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(0.5)
            self._wake.clear()
            if self._stopping:
                break
            with self._lock:
                acked, self._acked_rows = self._acked_rows, []
                if acked:
                    self.outbox.ack(acked)
                    self.acked += len(acked)
                room = self.window - len(self._inflight)
            if room <= 0:
                continue
            for row in self.outbox.pending(limit=room, after_id=self._handed):
                info = self.client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
                if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                    break   # paho did not take it (its queue is full): try again on the next wake-up
                self._handed = row.id
                with self._lock:
                    if info.mid in self._early:
                        self._early.discard(info.mid)
                        self._acked_rows.append(row.id)
                        self._wake.set()
                    else:
                        self._inflight[info.mid] = row.id


# --------------------------------------------------------------------------- receiver

class NodeView:
    """What a receiver knows about one node (for ``iotbpf listen``'s table)."""

    def __init__(self, node: str):
        self.node = node
        self.status: str | None = None
        self.soc_percent: float | None = None
        self.power_w: float | None = None
        self.lifetime_days: float | None = None
        self.last_seen: float | None = None   # wall-clock time of the last message
        self.last_ts_ns: int | None = None    # the node's own clock in its last report
        self.reports = 0

    def as_dict(self) -> dict:
        return {"node": self.node, "status": self.status, "soc_percent": self.soc_percent,
                "power_w": self.power_w, "lifetime_days": self.lifetime_days,
                "last_seen": self.last_seen, "last_ts_ns": self.last_ts_ns, "reports": self.reports}


class Receiver:
    """Subscribes to ``iotbpf/<node>/#`` for nodes matching a glob; validates and de-duplicates.

    With ``persistent=True`` the session survives disconnects (clean_session=False and a fixed
    ``client_id``), so reports published while the receiver was away are delivered later.
    Accepted reports go to ``on_report(report_dict)``, are kept in ``reports`` (``keep=True``)
    and appended to ``save`` as JSON lines: {"topic", "received", "payload"}.
    """

    def __init__(self, url: str, *, nodes: str = "*", client_id: str | None = None,
                 persistent: bool = False, keep: bool = True, save: str | os.PathLike | None = None,
                 on_report: Callable[[dict], None] | None = None, keepalive: float = 30,
                 reconnect_min: float = 0.5, reconnect_max: float = 30.0,
                 ca_certs: str | None = None, tls_insecure: bool = False,
                 username: str | None = None, password: str | None = None):
        self.url = parse_url(url)
        self.pattern = nodes
        if persistent and not client_id:
            raise MqttError("a persistent receiver needs a fixed client_id")
        self.client_id = client_id or "iotbpf-listen-" + uuid.uuid4().hex[:8]
        self.keep = keep
        self.keepalive = keepalive
        self.on_report = on_report
        self.reports: list[dict] = []
        self.invalid: list[str] = []    # the first MAX_INVALID_KEPT reasons
        self.invalid_count = 0          # every message dropped as invalid
        self.max_nodes = MAX_NODES
        self.nodes: dict[str, NodeView] = {}
        self.dedup = Deduplicator()
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._connected = threading.Event()
        self._save = open(save, "a", encoding="utf-8") if save is not None else None  # noqa: SIM115
        self.client = _make_client(self.url, self.client_id, not persistent, keepalive, reconnect_min,
                                   reconnect_max, ca_certs, None, None, tls_insecure, username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> Receiver:
        try:
            _connect(self.client, self.url, self.keepalive)
        except (OSError, ValueError) as exc:
            raise MqttError("cannot connect to %r: %s" % (self.url, exc)) from None
        return self

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def duplicates(self) -> int:
        return self.dedup.duplicates

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (checked on every message); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.2))
        return True

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        if self._save is not None:
            self._save.close()
            self._save = None

    # paho callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = "broker refused the connection: %s" % reason_code
            return
        client.subscribe(TOPIC_ROOT + "/+/#", qos=1)
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()

    def _on_message(self, client, userdata, message) -> None:
        # paho's network thread: an exception here would end it (every later report silently
        # lost), so whatever a payload does is caught, counted and shown, never raised.
        try:
            self._receive(message)
        except Exception as exc:
            with self._changed:
                self._invalid("%s: %s" % (_printable(message.topic), _printable(
                    "unexpected %s: %s" % (type(exc).__name__, exc))))

    def _invalid(self, reason: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_INVALID_KEPT:
            self.invalid.append(reason[:300])
        self._changed.notify_all()

    def _receive(self, message) -> None:
        where = split_topic(message.topic)
        if where is None:
            return
        node, suffix = where
        if not fnmatch.fnmatchcase(node, self.pattern):
            return
        now = time.time()
        with self._changed:
            if suffix != "status" and suffix not in TOPIC_KIND:
                return
            try:
                report = None if suffix == "status" else parse_payload(bytes(message.payload))
            except ReportFormatError as exc:
                self._invalid("%s: %s" % (_printable(message.topic), _printable(str(exc))))
                return
            if report is not None and (report["node"] != node or KIND_TOPIC[report["kind"]] != suffix):
                self._invalid("%s: node or kind does not match the topic" % _printable(message.topic))
                return
            view = self.nodes.get(node)
            if view is None:
                if len(self.nodes) >= self.max_nodes:
                    self._invalid("%s: more than %d nodes; not tracked" % (_printable(message.topic),
                                                                          self.max_nodes))
                    return
                view = self.nodes[node] = NodeView(node)
            if not getattr(message, "retain", False):
                # a retained message is the broker's copy of something said earlier (an old
                # "offline" will, a last report): it says nothing of when the node was last heard
                view.last_seen = now
            if report is None:
                view.status = bytes(message.payload[:64]).decode("utf-8", "replace")
                self._write_line(message.topic, now, view.status)
                self._changed.notify_all()
                return
            if not self.dedup.accept(node, report["stream"], report["seq"]):
                return
            self._update_view(view, report)
            if self.keep:
                self.reports.append(report)
            self._write_line(message.topic, now, report)
            self._changed.notify_all()
        if self.on_report is not None:
            self.on_report(report)

    def _update_view(self, view: NodeView, report: dict) -> None:
        view.reports += 1
        view.last_ts_ns = report["ts_ns"]
        data = report["data"]
        if report["kind"] == "battery":
            view.soc_percent = data["soc_percent"]
            view.lifetime_days = data["lifetime_days"]
            if isinstance(data.get("power_w"), (int, float)):
                view.power_w = data["power_w"]
        elif report["kind"] == "energy":
            view.power_w = data["power_w"]

    def _write_line(self, topic_name: str, received: float, payload) -> None:
        if self._save is not None:
            self._save.write(json.dumps({"topic": topic_name, "received": received, "payload": payload},
                                        sort_keys=True) + "\n")
            self._save.flush()


def _printable(text: str, limit: int = 200) -> str:
    """Text from the network made safe for a terminal: control characters escaped, bounded."""
    text = text[:limit]
    return "".join(ch if ch.isprintable() else "\\x%02x" % ord(ch) if ord(ch) < 256 else "?"
                   for ch in text)


# --------------------------------------------------------------------------- operator side

def send_command(url: str, node: str, secret: bytes, op: str, timeout: float = 10.0, *,
                 ca_certs: str | None = None, tls_insecure: bool = False, counter: int | None = None,
                 **fields) -> dict:
    """Sign a command for ``node`` with its key ``secret``, publish it on ``iotbpf/<node>/cmd``
    and wait for the reply. ``fields`` are the command's (map=, key=, value=, section=, bundle=...).

    Returns the reply's ``data`` (``ok``, ``reason``, ``result``...). The node must be running
    and process its commands; raises MqttError if no reply arrives within ``timeout`` seconds
    (the command stays queued for the node's persistent session and may still run later).
    """
    from iotbpf.report.remote import make_command, sign_command

    broker = parse_url(url)
    body = make_command(check_node_name(node), op, counter=counter, **fields)
    payload = sign_command(secret, body)
    reply: dict = {}
    got = threading.Event()
    subscribed = threading.Event()

    def on_message(client, userdata, message):
        try:
            report = parse_payload(bytes(message.payload))
        except ReportFormatError:
            return
        if report["kind"] == "cmd_reply" and report["data"].get("id") == body["id"]:
            reply.update(report["data"])
            got.set()

    client = _make_client(broker, "iotbpf-operator-" + uuid.uuid4().hex[:8], True, 30, 0.5, 5.0, ca_certs,
                          None, None, tls_insecure, None, None)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: None if rc.is_failure else c.subscribe(topic(node, "cmd/reply"), 1)
    client.on_subscribe = lambda *a: subscribed.set()
    _connect(client, broker, 30)
    try:
        if not subscribed.wait(timeout):
            raise MqttError("cannot reach MQTT broker %r" % broker)
        client.publish(topic(node, "cmd"), payload, qos=1)
        if not got.wait(timeout):
            raise MqttError("no reply from node %s within %g s (is it running?)" % (node, timeout))
    finally:
        client.disconnect()
        client.loop_stop()
    return reply
