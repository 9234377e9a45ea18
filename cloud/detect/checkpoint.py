"""Checkpoints of a partition's detector state in the relational store.

What a partition's detectors have learnt (night-flow baselines, pump cycle counters,
flood stages, open conditions, offline timers) is written as one row per partition by
its owner, at least every minute (the tier writes more often: see
:mod:`cloud.detect.tier`), guarded by the owner's lease fence. A standby that takes the
partition over starts from it, so a baseline that took a week to learn survives a
failover.

The state is pickled. The database is trusted like the code (it also holds the tokens'
hashes and the registry): whoever can write this table can run code in the detector,
so the detector's database user must be the only writer (``docs/scaling.md``).

A checkpoint this version cannot read (written by a newer version before a rollback, or
damaged) raises :class:`CheckpointError`; the tier then starts the partition afresh and
says so (see :meth:`cloud.detect.tier.DetectorTier._own`).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from cloud.db.detect import CheckpointRow
from cloud.detect.lease import Lease, still_owner
from cloud.errors import CloudError


class CheckpointError(CloudError):
    """A partition's checkpoint cannot be read (names the partition and when it was saved)."""


@dataclass(frozen=True)
class Checkpoint:
    partition: int
    fence: int
    saved_at: datetime
    event_time: datetime | None
    state: Any


def save(
    sm: sessionmaker[Session],
    lease: Lease,
    state: Any,
    *,
    event_time: datetime | None,
    now: datetime,
    fenced: bool = True,
) -> bool:
    """Write ``state`` for ``lease.partition``; False (nothing written): the lease is lost.
    ``fenced=False``: the only detector (``akita cloud run``), no lease to check."""
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    with sm.begin() as s:
        if fenced and not still_owner(s, lease, now):
            return False
        row = s.get(CheckpointRow, lease.partition)
        if row is None:
            row = CheckpointRow(partition=lease.partition)
            s.add(row)
        row.fence = lease.fence
        row.saved_at = now
        row.event_time = event_time
        row.state = blob
    return True


def load(sm: sessionmaker[Session], partition: int) -> Checkpoint | None:
    """The partition's last checkpoint (None: never written)."""
    with sm() as s:
        row = s.get(CheckpointRow, partition)
        if row is None:
            return None
        try:
            state = pickle.loads(row.state)  # trusted: see the module docstring
        except Exception as exc:  # a newer version's classes, or damaged bytes
            raise CheckpointError(
                f"partition {partition}: the checkpoint saved at {row.saved_at} cannot be "
                f"read ({type(exc).__name__}: {exc})"
            ) from exc
        return Checkpoint(row.partition, row.fence, row.saved_at, row.event_time, state)
