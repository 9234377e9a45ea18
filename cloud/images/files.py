"""Content-addressed image files: ``<dir>/<sha[:2]>/<sha>.jpg``, 0600 in 0700 directories.

Written to a private temporary file, fsynced, renamed into place and the directory
fsynced, so a file under its final name is always whole: after a crash the receiver
finds either nothing (and the broker redelivers the image) or the complete picture.
The same bytes are one file whatever the number of index rows naming them.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from cloud.db.files import FILE_MODE, private_dir

_SHA = re.compile(r"^[0-9a-f]{64}$")


class ImageFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(root)

    def path(self, sha256: str) -> Path:
        if not _SHA.match(sha256):  # the name comes from the index only, but be strict
            raise ValueError(f"sha256 {sha256!r} is not 64 lower-case hex digits")
        return self.root / sha256[:2] / f"{sha256}.jpg"

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def write(self, sha256: str, data: bytes) -> None:
        """Durably store ``data`` under its hash (nothing to do when already there)."""
        final = self.path(sha256)
        if final.is_file() and final.stat().st_size == len(data):
            return
        private_dir(final.parent)
        tmp = final.with_name(f".{sha256}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)  # the umask masks os.open's mode
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()


def _fsync_dir(path: Path) -> None:
    """The rename is durable only once its directory is on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
