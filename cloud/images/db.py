"""The image index: one row per (gateway, seq, hash) received, and alert attachments.

The bytes live in the file store under their SHA-256 (:mod:`cloud.images.files`); a
row names them. A new table needs no migration (cloud/db/migrations: tables new since a
database's revision are created from the models); :func:`create_tables` creates these
when the image store opens.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.base import Base


class ImageRow(Base):
    __tablename__ = "camera_images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    gateway_id: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(80))
    seq: Mapped[int] = mapped_column(Integer, doc="The gateway's image counter")
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime]
    received_at: Mapped[datetime]

    __table_args__ = (
        # a re-send is byte-identical with the same seq; the same seq with other bytes is
        # a gateway whose counter restarted (a new spool), a different image
        UniqueConstraint("gateway_id", "seq", "sha256", name="uq_camera_images_resend"),
        Index("ix_camera_images_camera_taken", "camera_id", "taken_at"),
    )


class AlertImageRow(Base):
    """An image attached to an alert: kept for ``alert_retention_days``."""

    __tablename__ = "alert_images"
    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    image_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("camera_images.id", ondelete="CASCADE"), primary_key=True
    )
    attached_at: Mapped[datetime]


class AlertImageWantRow(Base):
    """A flood alert's stage change still looking for its picture (cloud.images.alerts).

    Kept in the database, not in memory: the image may arrive in another process (the
    receiver runs in ``akita cloud run``, alerts may change in ``akita cloud detect``) or
    after a restart. ``at`` is the reading time the picture should be nearest to.
    """

    __tablename__ = "alert_image_wants"
    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(80), index=True)


class ImageLinkRow(Base):
    """A public link to an alert's picture (cloud.images.links): only the SHA-256 of the
    token is stored, so the table alone opens no page."""

    __tablename__ = "image_links"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime]
    stage: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime]


def create_tables(engine: Engine) -> None:
    tables = [ImageRow, AlertImageRow, AlertImageWantRow, ImageLinkRow]
    Base.metadata.create_all(engine, tables=[t.__table__ for t in tables])  # type: ignore[misc]
