"""The installed local flood rules, in the spool file beside the commands, so a gateway
that reboots during a storm still has them (edge/failsafe.py)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from pydantic import ValidationError

from edge.errors import SpoolError
from schemas.edge_rules import EdgeFloodRule

_SCHEMA = """
CREATE TABLE IF NOT EXISTS local_rules (
    device_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    installed_at REAL NOT NULL
)
"""


class FailSafeStore:
    def __init__(self, path: Path) -> None:
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=10)
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise SpoolError(f"local rules in {path}: {exc}") from exc

    def load(self) -> tuple[dict[str, EdgeFloodRule], list[str]]:
        """(rules by sign, why a stored row was unreadable) - a bad row is skipped, said."""
        rules: dict[str, EdgeFloodRule] = {}
        bad: list[str] = []
        for device_id, body in self._db.execute("SELECT device_id, body FROM local_rules"):
            try:
                rules[device_id] = EdgeFloodRule.model_validate_json(body)
            except ValidationError as exc:
                bad.append(f"{device_id}: {exc.errors(include_url=False)[0]['msg']}")
        return rules, bad

    def save(self, device_id: str, rule: EdgeFloodRule) -> None:
        """Committed before the command that carried it is reported done."""
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO local_rules VALUES (?, ?, ?)",
                (device_id, rule.model_dump_json(), time.time()),
            )
        except sqlite3.Error as exc:
            raise SpoolError(f"saving the local rule of {device_id}: {exc}") from exc

    def close(self) -> None:
        self._db.close()
