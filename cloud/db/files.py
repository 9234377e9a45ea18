"""Private files: the SQLite databases hold residents' addresses and the link-signing
key, so they are created readable by their owner only (0600) in directories only the
owner can enter (0700), whatever the process umask. Files that already exist keep the
mode their administrator gave them."""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create ``path`` and any missing parents with mode 0700 (existing ones untouched)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another process made it meanwhile
        os.chmod(d, DIR_MODE)  # mkdir's mode is masked by the umask


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 when it does not exist yet."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(fd, FILE_MODE)  # os.open's mode is masked by the umask too
    os.close(fd)


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (None for memory or other databases)."""
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return None
    return Path(url[len("sqlite:///") :].split("?", 1)[0])
