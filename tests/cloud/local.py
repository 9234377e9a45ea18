"""Settings of a whole cloud process on one test machine: the test's Mosquitto, SQLite
files under the test's directory, alerts that stay open between a test's readings."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def local_settings(
    tmp_path: Path, broker_port: int, unique: str, **sections: Any
) -> dict[str, Any]:
    """The mapping for ``CloudSettings.from_mapping``; ``sections`` adds or replaces."""
    return {
        "environment": "test",
        "ingest": {"broker_host": "127.0.0.1", "broker_port": broker_port,
                   "client_id": f"ingest-{unique}", "group": f"g{unique}"},
        "store": {"url": f"sqlite:///{tmp_path / 'ts.db'}"},
        "database": {"url": f"sqlite:///{tmp_path / 'akita.db'}"},
        "alerts": {"hold_off_s": 600, "min_open_s": 0},
        **sections,
    }  # fmt: skip
