"""Tables of the detector tier (:mod:`cloud.detect.tier`): members, partition leases,
checkpoints of detector state, and the last detection applied per alert key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.base import Base


class DetectorMemberRow(Base):
    """A running detector instance; live while its heartbeat is recent."""

    __tablename__ = "detector_members"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    heartbeat_at: Mapped[datetime]
    started_at: Mapped[datetime]


class PartitionLeaseRow(Base):
    """Who owns a partition until when. ``fence`` goes up by one at every change of
    owner: a write guarded by an older fence is refused (a paused or partitioned former
    owner cannot write over its successor)."""

    __tablename__ = "detector_leases"
    partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    owner: Mapped[str | None] = mapped_column(String(80))
    fence: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime]


class CheckpointRow(Base):
    """The detector state of one partition (baselines, counters, stages, open conditions)
    and where in the stream it stands; written at least every minute by the owner."""

    __tablename__ = "detector_checkpoints"
    partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    fence: Mapped[int] = mapped_column(BigInteger, doc="The lease fence of the writer")
    saved_at: Mapped[datetime]
    event_time: Mapped[datetime | None] = mapped_column(doc="Newest reading time applied")
    state: Mapped[bytes] = mapped_column(LargeBinary)


class DetectionMarkRow(Base):
    """The newest detection applied to the alert lifecycle per alert key (device + kind):
    a redelivered reading makes the same detection again, at a time not after this one,
    and is not applied twice."""

    __tablename__ = "detection_marks"
    dedup_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    ts: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean)
