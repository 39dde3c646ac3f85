"""Durable sqlite3 outbox for MQTT reports (a report leaves it only after the broker's PUBACK, so
nothing is lost) and the receiver's duplicate filter by (node, stream, seq); CPython only.
The database schema and the guarantees: docs/mqtt.md ("Nothing lost, no duplicates").
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable

from iotbpf.ebpf.errors import IotbpfError

OUTBOX_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL
);
"""


class OutboxRow:
    """One stored message: its row id and what to publish."""

    __slots__ = ("id", "topic", "payload", "qos", "retain")

    def __init__(self, row_id: int, topic: str, payload: bytes, qos: int, retain: bool):
        self.id = row_id
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain

    def __repr__(self) -> str:
        return "OutboxRow(%d, %r, %d bytes)" % (self.id, self.topic, len(self.payload))


class Outbox:
    """An sqlite3-backed queue of messages not yet acknowledged by the broker; thread-safe.

    ``synchronous`` is sqlite's PRAGMA: "FULL" (default) survives a power cut, "NORMAL" only a
    process crash (faster: no fsync per report in WAL mode).
    """

    def __init__(self, path: str | os.PathLike, synchronous: str = "FULL"):
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                       timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=" + synchronous)
            self._db.executescript(_SCHEMA)
            self._init_meta()
        except sqlite3.DatabaseError as exc:
            raise IotbpfError("outbox %s: %s" % (self.path, exc)) from None

    def _init_meta(self) -> None:
        with self._transaction():
            version = self._get_meta("version")
            if version is None:
                self._set_meta("version", str(OUTBOX_VERSION))
                self._set_meta("stream", uuid.uuid4().hex[:16])
            elif version != str(OUTBOX_VERSION):
                raise IotbpfError("outbox %s has version %s; this iotbpf reads version %d"
                                  % (self.path, version, OUTBOX_VERSION))
        self.stream = self._get_meta("stream")

    # -- internal helpers (caller holds self._lock or is in __init__)
    def _get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _transaction(self):
        return _Transaction(self._db)

    # -- public API
    def append(self, topic: str, make_payload: Callable[[int], bytes], seq_key: str, qos: int = 1,
               retain: bool = False) -> tuple[int, int]:
        """Allocate the next sequence number of ``seq_key`` and store ``make_payload(seq)``.

        Both happen in one transaction, so a stored report always has a sequence number no
        other report of this stream has. Returns (row id, seq). Durable when it returns.
        """
        with self._lock, self._transaction():
            key = "seq:" + seq_key
            seq = int(self._get_meta(key) or 0) + 1
            payload = make_payload(seq)
            self._set_meta(key, str(seq))
            cur = self._db.execute(
                "INSERT INTO outbox(topic, payload, qos, retain, created) VALUES (?, ?, ?, ?, ?)",
                (topic, bytes(payload), int(qos), 1 if retain else 0, time.time()))
            return cur.lastrowid, seq

    def new_stream(self) -> str:
        """Start a new stream (a new random id, sequence numbers from 1 again); reports still
        waiting keep the stream they were made in and are still delivered. For a producer whose
        clock restarts (a simulation run), so consumers can tell its runs apart."""
        with self._lock, self._transaction():
            self.stream = uuid.uuid4().hex[:16]
            self._set_meta("stream", self.stream)
            self._db.execute("DELETE FROM meta WHERE key LIKE 'seq:%'")
        return self.stream

    def last_seq(self, seq_key: str) -> int:
        """The last sequence number allocated for ``seq_key`` (0 if none)."""
        with self._lock:
            return int(self._get_meta("seq:" + seq_key) or 0)

    def pending(self, limit: int = 100, after_id: int = 0) -> list[OutboxRow]:
        """Up to ``limit`` unacknowledged rows with id > after_id, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit)).fetchall()
        return [OutboxRow(r[0], r[1], bytes(r[2]), r[3], bool(r[4])) for r in rows]

    def ack(self, row_ids) -> None:
        """Delete acknowledged rows (one transaction for the whole batch)."""
        ids = list(row_ids)
        if not ids:
            return
        with self._lock, self._transaction():
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def count(self) -> int:
        """How many rows are waiting for an acknowledgement."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
        return False


class Deduplicator:
    """Drops reports already seen, by (node, stream, seq); memory stays small for in-order streams.

    Per (node, stream) it keeps a watermark (every seq <= watermark was seen) and the set of
    seqs seen above it, so out-of-order redelivery after an outage is handled exactly.
    """

    def __init__(self) -> None:
        self._state: dict[tuple[str, str], tuple[int, set[int]]] = {}
        self.duplicates = 0

    def accept(self, node: str, stream: str, seq: int) -> bool:
        """True the first time (node, stream, seq) is offered, False for every repeat."""
        key = (node, stream)
        watermark, above = self._state.get(key, (0, set()))
        if seq <= watermark or seq in above:
            self.duplicates += 1
            return False
        above.add(seq)
        while watermark + 1 in above:
            watermark += 1
            above.discard(watermark)
        self._state[key] = (watermark, above)
        return True

    def missing(self, node: str, stream: str, upto: int) -> list[int]:
        """Sequence numbers 1..upto not yet seen for (node, stream): the gaps."""
        watermark, above = self._state.get((node, stream), (0, set()))
        return [s for s in range(watermark + 1, upto + 1) if s not in above]
