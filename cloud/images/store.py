"""The image store: files by hash (:mod:`cloud.images.files`) + the relational index.

Exactly once: the gateway re-sends an image byte-identical with the same seq, so a row
with the same (gateway, seq, sha256) means the image is already stored; the re-send is
acknowledged and nothing is written. The same seq with other bytes is a gateway whose
counter restarted (a reinstalled spool): a new image, stored, and logged. Identical
bytes under another seq (a scene that did not change) get their own row naming the one
file: the picture is stored once, the time it was taken is not lost.

Retention (:meth:`ImageStore.prune`): an image older than its camera's retention goes,
unless an alert holds it and it is younger than ``alert_retention_days``. A file goes
with the last row naming it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.images.db import AlertImageRow, ImageRow, create_tables
from cloud.images.files import ImageFiles
from cloud.images.settings import ImageSettings
from schemas.images import ImageHeader

log = logging.getLogger(__name__)
PRUNE_CHUNK = 1000  # rows per delete: one sweep never holds the database for long


@dataclass(frozen=True)
class ImageInfo:
    id: int
    camera_id: str
    gateway_id: str
    site: str
    seq: int
    sha256: str
    size: int
    width: int
    height: int
    taken_at: datetime
    received_at: datetime


@dataclass(frozen=True)
class PutResult:
    image_id: int
    duplicate: bool


def _info(row: ImageRow) -> ImageInfo:
    return ImageInfo(
        id=row.id, camera_id=row.camera_id, gateway_id=row.gateway_id, site=row.site,
        seq=row.seq, sha256=row.sha256, size=row.size, width=row.width, height=row.height,
        taken_at=row.taken_at, received_at=row.received_at,
    )  # fmt: skip


class ImageStore:
    def __init__(
        self, engine: Engine, sessions: sessionmaker[Session], settings: ImageSettings
    ) -> None:
        create_tables(engine)
        self.sessions = sessions
        self.settings = settings
        self.files = ImageFiles(settings.dir)
        # the receiver's put and the retention sweep: a file is never removed between a
        # put finding it on disk and its row being committed
        self._lock = threading.Lock()

    # --- writing ------------------------------------------------------------------------

    def put(self, header: ImageHeader, jpeg: bytes, received_at: datetime) -> PutResult:
        """Store durably (file fsynced, row committed) unless already stored."""
        with self._lock, self.sessions() as s:
            same = s.scalar(
                select(ImageRow.id).where(
                    ImageRow.gateway_id == header.gateway_id,
                    ImageRow.seq == header.seq,
                    ImageRow.sha256 == header.sha256,
                )
            )
            if same is not None:
                return PutResult(same, duplicate=True)
            self._note_seq_reset(s, header)
            self.files.write(header.sha256, jpeg)
            row = ImageRow(
                camera_id=header.camera_id, gateway_id=header.gateway_id, site=header.site,
                seq=header.seq, sha256=header.sha256, size=header.size, width=header.width,
                height=header.height, taken_at=header.taken_at, received_at=received_at,
            )  # fmt: skip
            s.add(row)
            try:
                s.commit()
            except IntegrityError:  # another receiver stored it meanwhile
                s.rollback()
                return PutResult(self._id_of(s, header), duplicate=True)
            return PutResult(row.id, duplicate=False)

    @staticmethod
    def _id_of(s: Session, header: ImageHeader) -> int:
        found = s.scalar(
            select(ImageRow.id).where(
                ImageRow.gateway_id == header.gateway_id,
                ImageRow.seq == header.seq,
                ImageRow.sha256 == header.sha256,
            )
        )
        assert found is not None
        return found

    @staticmethod
    def _note_seq_reset(s: Session, header: ImageHeader) -> None:
        other = s.scalar(
            select(ImageRow.sha256).where(
                ImageRow.gateway_id == header.gateway_id, ImageRow.seq == header.seq
            )
        )
        if other is not None:
            log.warning(
                "image_seq_reused gateway=%s seq=%d camera=%s reason=other bytes under a "
                "stored seq (gateway image counter restarted): stored as a new image",
                header.gateway_id,
                header.seq,
                header.camera_id,
            )

    def attach(self, alert_id: str, image_id: int, at: datetime) -> None:
        """Attach an image to an alert (idempotent): it is kept for the alert period."""
        with self.sessions() as s:
            if s.get(AlertImageRow, (alert_id, image_id)) is None:
                s.add(AlertImageRow(alert_id=alert_id, image_id=image_id, attached_at=at))
                s.commit()

    # --- reading ------------------------------------------------------------------------

    def get(self, image_id: int) -> ImageInfo | None:
        with self.sessions() as s:
            row = s.get(ImageRow, image_id)
            return None if row is None else _info(row)

    def latest(self, camera_id: str) -> ImageInfo | None:
        with self.sessions() as s:
            row = s.scalars(
                select(ImageRow)
                .where(ImageRow.camera_id == camera_id)
                .order_by(ImageRow.taken_at.desc(), ImageRow.id.desc())
                .limit(1)
            ).first()
            return None if row is None else _info(row)

    def between(
        self, camera_id: str, since: datetime, until: datetime, limit: int
    ) -> list[ImageInfo]:
        """Images of ``camera_id`` taken in [since, until), oldest first."""
        with self.sessions() as s:
            rows = s.scalars(
                select(ImageRow)
                .where(
                    ImageRow.camera_id == camera_id,
                    ImageRow.taken_at >= since,
                    ImageRow.taken_at < until,
                )
                .order_by(ImageRow.taken_at, ImageRow.id)
                .limit(limit)
            )
            return [_info(r) for r in rows]

    def nearest(
        self, camera_ids: Sequence[str], at: datetime, within: timedelta
    ) -> ImageInfo | None:
        """The image of any of ``camera_ids`` taken closest to ``at`` (within ``within``)."""
        if not camera_ids:
            return None
        with self.sessions() as s:
            rows = s.scalars(
                select(ImageRow).where(
                    ImageRow.camera_id.in_(camera_ids),
                    ImageRow.taken_at >= at - within,
                    ImageRow.taken_at <= at + within,
                )
            )
            best = min(rows, key=lambda r: abs((r.taken_at - at).total_seconds()), default=None)
            return None if best is None else _info(best)

    def for_alert(self, alert_id: str) -> list[ImageInfo]:
        with self.sessions() as s:
            rows = s.scalars(
                select(ImageRow)
                .join(AlertImageRow, AlertImageRow.image_id == ImageRow.id)
                .where(AlertImageRow.alert_id == alert_id)
                .order_by(ImageRow.taken_at, ImageRow.id)
            )
            return [_info(r) for r in rows]

    def read(self, info: ImageInfo) -> bytes:
        return self.files.read(info.sha256)

    # --- retention ----------------------------------------------------------------------

    def prune(self, now: datetime) -> tuple[int, int]:
        """Apply retention; returns (index rows removed, files removed)."""
        rows = files = 0
        with self.sessions() as s:
            cameras = list(s.scalars(select(ImageRow.camera_id).distinct()))
        for camera in cameras:
            while True:
                r, f = self._prune_chunk(camera, now)
                rows, files = rows + r, files + f
                if r < PRUNE_CHUNK:
                    break
        if rows:
            log.info("image_retention rows=%d files=%d", rows, files)
        return rows, files

    def _prune_chunk(self, camera: str, now: datetime) -> tuple[int, int]:
        cutoff = now - timedelta(days=self.settings.retention_for(camera))
        alert_cutoff = now - timedelta(days=self.settings.alert_retention_days)
        held = exists().where(AlertImageRow.image_id == ImageRow.id)
        with self._lock, self.sessions() as s:
            doomed = s.execute(
                select(ImageRow.id, ImageRow.sha256)
                .where(
                    ImageRow.camera_id == camera,
                    ImageRow.taken_at < cutoff,
                    ~held | (ImageRow.taken_at < alert_cutoff),
                )
                .limit(PRUNE_CHUNK)
            ).all()
            if not doomed:
                return 0, 0
            ids = [d.id for d in doomed]
            s.execute(delete(AlertImageRow).where(AlertImageRow.image_id.in_(ids)))
            s.execute(delete(ImageRow).where(ImageRow.id.in_(ids)))
            s.commit()
            hashes = {d.sha256 for d in doomed}
            still = set(s.scalars(select(ImageRow.sha256).where(ImageRow.sha256.in_(hashes))))
            for sha in hashes - still:  # after the commit: a row never names a missing file
                self.files.delete(sha)
        return len(ids), len(hashes - still)
