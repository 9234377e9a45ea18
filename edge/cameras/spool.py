"""The image spool: masked JPEGs in their own SQLite file, bounded in bytes, drop-oldest.

Separate from the readings spool so a backlog of pictures never slows the readings'
batches. Each image gets the next ``seq`` when committed; it is deleted only after the
broker's PUBACK. Over ``max_bytes`` the oldest images go first, counted in ``dropped``
(persisted, so a restart does not forget them).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  camera_id TEXT NOT NULL,
  site TEXT NOT NULL,
  taken_at TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  jpeg BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class SpooledImage:
    seq: int
    camera_id: str
    site: str
    taken_at: str
    sha256: str
    width: int
    height: int
    jpeg: bytes


class ImageSpool:
    def __init__(self, path: Path, *, max_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an image reported taken survives a crash
        self._db.executescript(_SCHEMA)

    @property
    def dropped(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()
        return int(row[0]) if row else 0

    def waiting(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0])

    def size_bytes(self) -> int:
        return int(
            self._db.execute("SELECT COALESCE(SUM(LENGTH(jpeg)), 0) FROM images").fetchone()[0]
        )

    def add(self, img: SpooledImage) -> tuple[int, int]:
        """Commit an image (its ``seq`` is ignored); returns (seq, images dropped for room)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute(
                "INSERT INTO images (camera_id, site, taken_at, sha256, width, height, jpeg)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    img.camera_id,
                    img.site,
                    img.taken_at,
                    img.sha256,
                    img.width,
                    img.height,
                    img.jpeg,
                ),
            )
            seq = int(cur.lastrowid or 0)
            dropped = self._enforce_bound()
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return seq, dropped

    def _enforce_bound(self) -> int:
        dropped = 0
        total = self.size_bytes()
        while total > self.max_bytes:
            row = self._db.execute(
                "SELECT seq, LENGTH(jpeg) FROM images ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                break
            self._db.execute("DELETE FROM images WHERE seq = ?", (row[0],))
            total -= int(row[1])
            dropped += 1
        if dropped:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('dropped', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                (dropped,),
            )
        return dropped

    def oldest(self) -> SpooledImage | None:
        row = self._db.execute(
            "SELECT seq, camera_id, site, taken_at, sha256, width, height, jpeg"
            " FROM images ORDER BY seq LIMIT 1"
        ).fetchone()
        return SpooledImage(*row) if row else None

    def ack(self, seq: int) -> None:
        self._db.execute("DELETE FROM images WHERE seq = ?", (seq,))

    def close(self) -> None:
        self._db.close()
