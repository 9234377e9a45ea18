"""Reading the shipped systemd units in tests (one parser for every unit test)."""

from __future__ import annotations

from pathlib import Path


def unit_section(unit: Path, name: str) -> dict[str, list[str]]:
    """``key -> values`` of one ``[name]`` section (a key may repeat, as systemd allows)."""
    values: dict[str, list[str]] = {}
    section = None
    for line in unit.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == name:
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values
