"""Commands and their results, durable in the spool's SQLite file.

::

    receive()   command row + its first result, in one transaction   -> then PUBACK
    start()     accepted -> executing, committed before the device is touched
    finish()    executing -> done | failed, and the result, in one transaction
    results     the outbox: CommandResult JSON, deleted on the broker's PUBACK

The row is the at-most-once record: an id already here is never executed again, and a
row left ``executing`` by a crash is finished as ``failed`` on the next start, never
re-run (whether the device saw the write is unknown). Final rows are kept until a day
after their ``expires_at``: a re-delivery after that is past expiry and is not executed
either. Results wait in the outbox while the uplink is down.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edge.errors import SpoolError

EXECUTING = "executing"  # internal: on the wire the command is still 'accepted'
KEEP_FINAL_S = 86_400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    state TEXT NOT NULL,
    rank INTEGER NOT NULL,     -- priority, 0 = life_safety
    expires_at REAL NOT NULL,  -- epoch seconds (the gateway's clock)
    body BLOB NOT NULL,        -- the Command JSON as received
    last_result BLOB           -- the latest CommandResult JSON, answered to a repeat
);
CREATE INDEX IF NOT EXISTS commands_open ON commands (state)
    WHERE state IN ('accepted', 'executing');
CREATE TABLE IF NOT EXISTS command_results (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class StoredCommand:
    id: str
    state: str
    rank: int
    expires_at: float
    body: bytes
    last_result: bytes | None


class CommandStore:
    """Not thread-safe: used from the agent's event loop only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")  # the spool writes the same file
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise SpoolError(f"command store {path}: {exc}") from exc

    def _run(self, what: str, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise SpoolError(f"command store {self.path}: {what} failed: {exc}") from exc

    def get(self, command_id: str) -> StoredCommand | None:
        row = self._db.execute(
            "SELECT id, state, rank, expires_at, body, last_result FROM commands WHERE id = ?",
            (command_id,),
        ).fetchone()
        return StoredCommand(*row) if row else None

    def receive(
        self,
        cmd: StoredCommand,
        device_id: str,
        result: bytes,
    ) -> None:
        """A new command and its first result (accepted, rejected or expired), together."""
        self._run(
            "receive",
            [
                (
                    "INSERT INTO commands (id, device_id, state, rank, expires_at, body, "
                    "last_result) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (cmd.id, device_id, cmd.state, cmd.rank, cmd.expires_at, cmd.body, result),
                ),
                ("INSERT INTO command_results (body) VALUES (?)", (result,)),
            ],
        )

    def start(self, command_id: str) -> None:
        self._run(
            "start",
            [("UPDATE commands SET state = ? WHERE id = ?", (EXECUTING, command_id))],
        )

    def finish(self, command_id: str, state: str, result: bytes) -> None:
        self._run(
            "finish",
            [
                (
                    "UPDATE commands SET state = ?, last_result = ? WHERE id = ?",
                    (state, result, command_id),
                ),
                ("INSERT INTO command_results (body) VALUES (?)", (result,)),
            ],
        )

    def answer(self, result: bytes) -> None:
        """Queue a result again (a repeated delivery asks for the known state)."""
        self._run("answer", [("INSERT INTO command_results (body) VALUES (?)", (result,))])

    def open_commands(self) -> list[StoredCommand]:
        """Commands accepted or executing (after a restart), by priority then arrival."""
        rows = self._db.execute(
            "SELECT id, state, rank, expires_at, body, last_result FROM commands "
            "WHERE state IN ('accepted', 'executing') ORDER BY rank, rowid"
        ).fetchall()
        return [StoredCommand(*r) for r in rows]

    def outbox(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._db.execute(
            "SELECT n, body FROM command_results WHERE n > ? ORDER BY n LIMIT ?", (after, limit)
        ).fetchall()
        return [(int(n), bytes(b)) for n, b in rows]

    def sent(self, n: int) -> None:
        """The broker has result ``n``: forget it."""
        try:
            self._db.execute("DELETE FROM command_results WHERE n = ?", (n,))
        except sqlite3.Error as exc:
            raise SpoolError(f"command store {self.path}: sent failed: {exc}") from exc

    def prune(self, now: float) -> int:
        """Forget final commands a day past their expiry (a repeat would be expired anyway)."""
        cur = self._db.execute(
            "DELETE FROM commands WHERE state NOT IN ('accepted', 'executing') AND expires_at < ?",
            (now - KEEP_FINAL_S,),
        )
        return cur.rowcount

    @property
    def pending_results(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM command_results").fetchone()[0])

    def close(self) -> None:
        self._db.close()
