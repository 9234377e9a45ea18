"""Partition leases in the relational store: one active owner per partition, fenced.

Each detector instance heartbeats a ``detector_members`` row; every instance computes
the same rendezvous assignment over the live members (:mod:`cloud.detect.partitions`)
and takes the leases of the partitions assigned to it, once free or expired. A lease
lasts ``ttl`` seconds and is renewed well before; an instance killed with ``kill -9``
stops renewing, and a standby takes its partitions when the lease expires.

Fencing: every change of owner adds one to the partition's ``fence``. The owner's
writes that matter (checkpoints, detection marks) check in their own transaction that
the fence is still theirs (:func:`still_owner`), so a former owner that was paused (GC,
swap, a network partition) and wakes up after its lease expired writes nothing.

Times are the instances' wall clocks: keep hosts in NTP sync (skew far below ``ttl``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.detect import DetectorMemberRow, PartitionLeaseRow


@dataclass(frozen=True)
class Lease:
    partition: int
    owner: str
    fence: int


def heartbeat(sm: sessionmaker[Session], name: str, now: datetime) -> None:
    """Say that instance ``name`` is alive."""
    with sm.begin() as s:
        row = s.get(DetectorMemberRow, name)
        if row is None:
            s.add(DetectorMemberRow(name=name, heartbeat_at=now, started_at=now))
        else:
            row.heartbeat_at = now


def leave(sm: sessionmaker[Session], name: str) -> None:
    """Instance ``name`` stops: it is no member any more (its leases are released apart)."""
    with sm.begin() as s:
        s.execute(delete(DetectorMemberRow).where(DetectorMemberRow.name == name))


def live_members(sm: sessionmaker[Session], now: datetime, ttl_s: float) -> list[str]:
    """Instances whose heartbeat is younger than ``ttl_s``, sorted."""
    since = now - timedelta(seconds=ttl_s)
    with sm() as s:
        rows = s.scalars(
            select(DetectorMemberRow.name).where(DetectorMemberRow.heartbeat_at >= since)
        )
        return sorted(rows)


def acquire(
    sm: sessionmaker[Session], partition: int, name: str, now: datetime, ttl_s: float
) -> Lease | None:
    """Take ``partition`` for ``name`` if it is free, expired or already ``name``'s (then
    renewed, same fence). None: another instance holds it."""
    until = now + timedelta(seconds=ttl_s)
    try:
        with sm.begin() as s:
            row = s.get(PartitionLeaseRow, partition)
            if row is None:
                s.add(PartitionLeaseRow(partition=partition, owner=name, fence=1, expires_at=until))
                s.flush()
                return Lease(partition, name, 1)
            if row.owner == name and row.expires_at > now:
                row.expires_at = until
                return Lease(partition, name, row.fence)
            if row.owner is not None and row.expires_at > now:
                return None
            fence = row.fence + 1
            # compare-and-set on the fence read: of two instances taking it at once, one wins
            taken = s.execute(
                update(PartitionLeaseRow)
                .where(
                    PartitionLeaseRow.partition == partition, PartitionLeaseRow.fence == row.fence
                )
                .values(owner=name, fence=fence, expires_at=until)
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], taken).rowcount != 1:
                s.rollback()
                return None
            return Lease(partition, name, fence)
    except IntegrityError:  # another instance inserted the row first
        return None


def renew(sm: sessionmaker[Session], lease: Lease, now: datetime, ttl_s: float) -> bool:
    """Extend ``lease``; False: it was lost (expired and taken, or fenced)."""
    with sm.begin() as s:
        done = s.execute(
            update(PartitionLeaseRow)
            .where(*_mine(lease), PartitionLeaseRow.expires_at > now)
            .values(expires_at=now + timedelta(seconds=ttl_s))
            .execution_options(synchronize_session=False)
        )
        return cast(CursorResult[Any], done).rowcount == 1


def release(sm: sessionmaker[Session], lease: Lease, now: datetime) -> None:
    """Give ``partition`` up at once (a clean stop, or it moved to another instance)."""
    with sm.begin() as s:
        s.execute(
            update(PartitionLeaseRow)
            .where(*_mine(lease))
            .values(owner=None, expires_at=now)
            .execution_options(synchronize_session=False)
        )


def still_owner(s: Session, lease: Lease, now: datetime) -> bool:
    """Inside the caller's transaction: is ``lease`` still current? On PostgreSQL the
    row stays locked until the transaction ends, so no takeover slips in between."""
    query = select(PartitionLeaseRow.fence).where(*_mine(lease), PartitionLeaseRow.expires_at > now)
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return s.execute(query).first() is not None


def holders(sm: sessionmaker[Session], now: datetime) -> dict[int, str]:
    """Current owners by partition (expired leases left out)."""
    with sm() as s:
        rows = s.execute(
            select(PartitionLeaseRow.partition, PartitionLeaseRow.owner).where(
                PartitionLeaseRow.owner.is_not(None), PartitionLeaseRow.expires_at > now
            )
        )
        return {p: o for p, o in rows if o is not None}


def _mine(lease: Lease) -> tuple[ColumnElement[bool], ...]:
    return (
        PartitionLeaseRow.partition == lease.partition,
        PartitionLeaseRow.owner == lease.owner,
        PartitionLeaseRow.fence == lease.fence,
    )
