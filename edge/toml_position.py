"""Where a key of a parsed TOML document sits in its source text (line and column).

``tomllib`` keeps no positions, and a position-keeping parser would be a dependency
for error messages alone. Config files are written as tables and arrays of tables
(``[gateway]``, ``[[devices]]``, ``[[devices.registers]]``), so scanning the headers
and counting array entries finds a key's line; a key not written (a missing option)
points at its table's header. Inline tables and dotted keys fall back to the
nearest header found, or to no position at all.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\s\"']+?)\s*\]\]?\s*(#.*)?$")


def _headers(lines: list[str]) -> list[tuple[Path, int, int]]:
    """(table path with array indices, line index, column) of every table header."""
    out: list[tuple[Path, int, int]] = []
    counts: dict[Path, int] = {}  # array-of-tables path -> entries so far
    for n, line in enumerate(lines):
        m = _HEADER.match(line)
        if m is None:
            continue
        names = [p.strip().strip("\"'") for p in m.group(2).split(".")]
        path: Path = ()
        for name in names[:-1]:  # parents resolve to their latest array entry
            path = _resolve((*path, name), counts)
        path += (names[-1],)
        if m.group(1) == "[[":
            index = counts.get(path, 0)
            counts[path] = index + 1
            # a new parent entry restarts the numbering of its children
            for key in [k for k in counts if len(k) > len(path) and k[: len(path)] == path]:
                del counts[key]
            path += (index,)
        out.append((path, n, line.index("[") + 1))
    return out


def _resolve(prefix: Path, counts: dict[Path, int]) -> Path:
    return (*prefix, counts[prefix] - 1) if prefix in counts else prefix


def position(text: str, path: Path) -> tuple[int, int] | None:
    """1-based (line, column) of the key at ``path``, or of its table when not written."""
    lines = text.splitlines()
    headers = _headers(lines)
    best: tuple[Path, int, int] | None = None
    for header in headers:
        hp = header[0]
        if path[: len(hp)] == hp and (best is None or len(hp) > len(best[0])):
            best = header
    start, column, depth = 0, 1, 0
    if best is not None:
        start, column, depth = best[1], best[2], len(best[0])
    rest = path[depth:]
    if rest and isinstance(rest[0], str):
        end = next((h[1] for h in headers if h[1] > start), len(lines))
        key = re.compile(rf"^(\s*)[\"']?{re.escape(rest[0])}[\"']?\s*=")
        for n in range(start + (best is not None), end):
            m = key.match(lines[n])
            if m:
                return n + 1, len(m.group(1)) + 1
    if best is None:
        return None
    return start + 1, column
