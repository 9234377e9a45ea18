"""Retention and settings of the image store (files on disk, index in SQLite)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.images.settings import ImageSettings
from cloud.images.store import ImageStore
from firmware_sim.camera.scene import draw
from schemas.images import ImageHeader

NOW = datetime(2025, 9, 1, tzinfo=UTC)


def _store(tmp: Path, **kw: object) -> ImageStore:
    engine = make_engine(f"sqlite:///{tmp / 'akita.db'}")
    create_all(engine)
    return ImageStore(engine, make_sessionmaker(engine), ImageSettings(dir=tmp / "img", **kw))  # type: ignore[arg-type]


def _put(store: ImageStore, seq: int, depth: float, age_days: float, camera: str = "cam-1") -> int:
    jpeg = draw(depth, with_exif=False).jpeg
    header = ImageHeader(
        gateway_id="gw", camera_id=camera, site="up", seq=seq,
        taken_at=NOW - timedelta(days=age_days), size=len(jpeg),
        sha256=hashlib.sha256(jpeg).hexdigest(), width=1280, height=720,
    )  # fmt: skip
    return store.put(header, jpeg, NOW).image_id


def test_retention_removes_an_old_image_but_keeps_an_alerts(tmp_path: Path) -> None:
    store = _store(tmp_path)
    old = _put(store, 1, 10.0, age_days=31)
    held = _put(store, 2, 20.0, age_days=40)
    fresh = _put(store, 3, 30.0, age_days=29)
    store.attach("alert-1", held, NOW - timedelta(days=40))
    old_file = store.files.path(store.get(old).sha256)  # type: ignore[union-attr]
    assert store.prune(NOW) == (1, 1)
    assert store.get(old) is None and not old_file.exists()
    assert store.get(held) is not None and store.get(fresh) is not None
    assert [i.id for i in store.for_alert("alert-1")] == [held]
    # a year on, the alert no longer holds it
    assert store.prune(NOW + timedelta(days=330)) == (2, 2)
    assert store.for_alert("alert-1") == []


def test_a_file_named_by_two_rows_goes_with_the_last(tmp_path: Path) -> None:
    store = _store(tmp_path, camera_retention_days={"cam-2": 60})
    a = _put(store, 1, 10.0, age_days=45, camera="cam-1")
    b = _put(store, 2, 10.0, age_days=45, camera="cam-2")  # same picture, kept 60 days
    assert store.prune(NOW) == (1, 0)
    info = store.get(b)
    assert store.get(a) is None and info is not None
    assert store.read(info) == draw(10.0, with_exif=False).jpeg


def test_settings_name_the_bad_value() -> None:
    with pytest.raises(ValidationError, match="alert_retention_days 20 is shorter"):
        ImageSettings(dir=Path("/x"), alert_retention_days=20)
    with pytest.raises(ValidationError, match=r"camera 'cam-1': 0 days is outside 1\.\.3650"):
        ImageSettings(dir=Path("/x"), camera_retention_days={"cam-1": 0})
