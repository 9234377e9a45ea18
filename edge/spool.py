"""Durable store-and-forward spool (SQLite in WAL mode).

Life of a reading::

    add()         -> row in ``items``            (committed before anything is published)
    take_batch()  -> rows moved into ``batches`` with the next ``seq``, in one transaction
    ack(seq)      -> batch row deleted            (only after the broker's PUBACK)

A batch keeps its ``seq`` and its exact payload until it is acknowledged, so a batch
re-sent after a crash or a reconnect is byte-identical and the cloud can tell a
duplicate (seq seen) from a gap (seq skipped). ``next_seq`` lives in the same file.

Priority items (call-unit button/cancel, device status changes) are batched before
any backlog. The bound ``max_items`` counts waiting items plus the readings held in
unacknowledged batches; on overflow the oldest non-priority waiting items are
dropped, counted in ``dropped`` (persisted) and reported in the gateway health.

WAL with ``synchronous=NORMAL``: a committed transaction survives the process being
killed (``kill -9``) and a clean reboot; only an OS crash or power cut can lose the
last transactions before a checkpoint. Set ``durable=True`` for ``synchronous=FULL``.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.errors import SpoolError

MAX_STATUSES = 1000  # a Batch carries at most this many statuses (schemas.wire.Batch)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prio INTEGER NOT NULL,
    status INTEGER NOT NULL,  -- 1: a DeviceStatus, 0: a Reading
    body BLOB NOT NULL        -- the item as wire JSON
);
CREATE INDEX IF NOT EXISTS items_prio ON items (prio, id) WHERE prio = 1;
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    n INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Item:
    """One thing to send: wire JSON of a Reading (``status=False``) or a DeviceStatus."""

    body: bytes
    priority: bool = False
    status: bool = False


@dataclass(frozen=True)
class SpooledBatch:
    seq: int
    size: int
    payload: bytes


class Spool:
    """The on-disk queue between the pollers and the MQTT uplink. Not thread-safe."""

    def __init__(self, path: Path, *, max_items: int = 2_000_000, durable: bool = False) -> None:
        self.path = path
        self.max_items = max_items
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
            self._waiting = self._scalar("SELECT count(*) FROM items")
            self._waiting_prio = self._scalar("SELECT count(*) FROM items WHERE prio = 1")
            self._in_batches = self._scalar("SELECT coalesce(sum(n), 0) FROM batches")
            self.dropped = self._meta("dropped", 0)
            last = self._scalar("SELECT max(seq) FROM batches")
            self._next_seq = max(self._meta("next_seq", 0), (last + 1) if last is not None else 0)
            self.boot_id = self._boot_id()
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {path}: {exc}") from exc

    def _boot_id(self) -> str:
        """The id of this spool's seq counter, made with it and kept in the same file. A
        new spool (a lost or replaced file) starts seq at 0 again with a new boot id; the
        cloud accepts a seq that goes back only after a birth message with a new one."""
        boot = self._meta("boot_id", -1)
        if boot < 0:
            boot = secrets.randbits(62)  # fits SQLite's signed 64-bit INTEGER
            self._set_meta("boot_id", boot)
        return f"{boot:016x}"

    # -- bookkeeping -------------------------------------------------------------------------

    def _scalar(self, sql: str) -> int:
        row = self._db.execute(sql).fetchone()
        return row[0]  # type: ignore[no-any-return]

    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def depth(self) -> int:
        """Readings and statuses not yet acknowledged by the broker."""
        return self._waiting + self._in_batches

    @property
    def waiting(self) -> int:
        """Items not yet put into a batch."""
        return self._waiting

    @property
    def waiting_priority(self) -> int:
        return self._waiting_prio

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    # -- the three operations ----------------------------------------------------------------

    def add(self, items: Sequence[Item]) -> int:
        """Commit ``items`` in one transaction; returns how many old items overflow dropped."""
        if not items:
            return 0
        rows = [(int(i.priority), int(i.status), i.body) for i in items]
        try:
            with self._tx():
                self._db.executemany(
                    "INSERT INTO items (prio, status, body) VALUES (?, ?, ?)", rows
                )
                self._waiting += len(rows)
                self._waiting_prio += sum(r[0] for r in rows)
                dropped = self._enforce_bound()
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: add failed: {exc}") from exc
        return dropped

    def _enforce_bound(self) -> int:
        excess = self.depth - self.max_items
        if excess <= 0:
            return 0
        cur = self._db.execute(
            "DELETE FROM items WHERE id IN "
            "(SELECT id FROM items WHERE prio = 0 ORDER BY id LIMIT ?)",
            (excess,),
        )
        n = cur.rowcount
        self._waiting -= n
        self.dropped += n
        self._set_meta("dropped", self.dropped)
        return n

    def take_batch(self, gateway_id: str, sent_at: str, max_items: int) -> SpooledBatch | None:
        """Move up to ``max_items`` waiting items (priority first) into a new numbered batch.

        ``sent_at`` is the wire timestamp (ISO 8601 UTC) written into the payload.
        """
        if self._waiting == 0:
            return None
        try:
            with self._tx():
                rows: list[tuple[int, int, bytes]] = []
                prio = False
                if self._waiting_prio:
                    rows = self._db.execute(
                        "SELECT id, status, body FROM items WHERE prio = 1 ORDER BY id LIMIT ?",
                        (min(max_items, MAX_STATUSES),),
                    ).fetchall()
                    prio = bool(rows)
                if not rows:
                    rows = self._db.execute(
                        "SELECT id, status, body FROM items ORDER BY id LIMIT ?", (max_items,)
                    ).fetchall()
                if not rows:  # counters drifted from the table; trust the table
                    self._waiting = self._waiting_prio = 0
                    return None
                self._db.execute(
                    "DELETE FROM items WHERE id BETWEEN ? AND ?"
                    + (" AND prio = 1" if prio else ""),
                    (rows[0][0], rows[-1][0]),
                )
                seq = self._next_seq
                payload = _payload(gateway_id, seq, sent_at, rows)
                self._db.execute(
                    "INSERT INTO batches (seq, n, payload) VALUES (?, ?, ?)",
                    (seq, len(rows), payload),
                )
                self._next_seq = seq + 1
                self._set_meta("next_seq", self._next_seq)
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: take_batch failed: {exc}") from exc
        self._waiting -= len(rows)
        if prio:
            self._waiting_prio -= len(rows)
        self._in_batches += len(rows)
        return SpooledBatch(seq, len(rows), payload)

    def ack(self, seq: int) -> int:
        """The broker has the batch: forget it. Returns how many items it held (0 if unknown)."""
        try:
            row = self._db.execute("SELECT n FROM batches WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return 0
            self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: ack failed: {exc}") from exc
        self._in_batches -= row[0]
        return int(row[0])

    def unacked(self) -> list[SpooledBatch]:
        """Batches formed but not acknowledged (after a crash or reconnect), oldest first."""
        rows = self._db.execute("SELECT seq, n, payload FROM batches ORDER BY seq").fetchall()
        return [SpooledBatch(s, n, p) for s, n, p in rows]

    def close(self) -> None:
        # a checkpoint is an optimisation; the WAL is replayed on the next open anyway
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    # -- helpers -----------------------------------------------------------------------------

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _payload(
    gateway_id: str, seq: int, sent_at: str, rows: Iterable[tuple[int, int, bytes]]
) -> bytes:
    """The Batch JSON, assembled from the items' JSON without re-encoding each reading."""
    readings: list[bytes] = []
    statuses: list[bytes] = []
    for _, status, body in rows:
        (statuses if status else readings).append(body)
    return b"".join(
        (
            b'{"v":1,"gateway_id":"',
            gateway_id.encode(),
            b'","seq":',
            str(seq).encode(),
            b',"sent_at":"',
            sent_at.encode(),
            b'","readings":[',
            b",".join(readings),
            b'],"statuses":[',
            b",".join(statuses),
            b"]}",
        )
    )
