"""The databases (residents' addresses, the link-signing key) are created 0600 in
directories the program creates 0700, even under a permissive umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.api.auth import Role, create_token
from tests.cloud.api.conftest import make_service


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: files 0644, directories 0755
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_databases_and_their_directories_are_private(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "var" / "lib" / "akita"
    service = make_service(
        data, store_url=f"sqlite:///{data / 'series' / 'telemetry.db'}"
    )  # make_service puts akita.db in ``data``
    try:
        create_token(service.sessionmaker, name="modes", role=Role.ADMIN)  # a write: WAL
        files = [data / "akita.db", data / "series" / "telemetry.db"]
        files += [p for p in data.rglob("*.db-*")]  # -wal / -shm companions
        assert any(p.name.endswith("-wal") for p in files), files
        for p in files:
            assert _mode(p) == 0o600, f"{p} is {oct(_mode(p))}"
        for d in (tmp_path / "var", tmp_path / "var" / "lib", data, data / "series"):
            assert _mode(d) == 0o700, f"{d} is {oct(_mode(d))}"
    finally:
        service.stop()


def test_an_existing_file_keeps_the_mode_its_administrator_chose(
    tmp_path: Path, loose_umask: None
) -> None:
    db = tmp_path / "akita.db"
    db.touch()
    db.chmod(0o640)  # e.g. readable by a backup group
    service = make_service(tmp_path)
    service.stop()
    assert _mode(db) == 0o640
