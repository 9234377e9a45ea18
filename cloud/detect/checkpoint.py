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

Each checkpoint carries a format version (:data:`CHECKPOINT_FORMAT`): the blob is a
pickled envelope ``{"format": N, "state": <the pickled state>}``. The state is pickled on
its own inside it, so the format is read before any of the state's classes are needed: a
newer version's checkpoint is refused by its format, not by whichever class happens to be
missing, and a newer state that would still unpickle is not fed to an engine that cannot
take it. A blob without the envelope (written before formats existed) is format 0, the
bare state, and is read as before.

A checkpoint this version cannot read (a format newer than :data:`CHECKPOINT_FORMAT`,
written by a newer version before a rollback, or damaged bytes) raises
:class:`CheckpointError`; the tier then starts the partition afresh and says so (see
:meth:`cloud.detect.tier.DetectorTier._restored`).
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

# Bump when the pickled engine state changes in a way an older version cannot read (a
# renamed or removed class, slot or key): an older version then refuses it by its format
# instead of feeding it to its engine. Added fields need no bump (see cloud/detect/base.py).
CHECKPOINT_FORMAT = 1


class CheckpointError(CloudError):
    """A partition's checkpoint cannot be read (names the partition and when it was saved)."""


@dataclass(frozen=True)
class Checkpoint:
    partition: int
    fence: int
    saved_at: datetime
    event_time: datetime | None
    state: Any
    format: int  # 0: written before checkpoints had a format


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
    inner = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    envelope = {"format": CHECKPOINT_FORMAT, "state": inner}
    blob = pickle.dumps(envelope, protocol=pickle.HIGHEST_PROTOCOL)
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
        where = f"partition {partition}: the checkpoint saved at {row.saved_at}"
        outer = _unpickle(row.state, where)
        if not _is_envelope(outer):
            fmt, state = 0, outer
        elif (fmt := outer["format"]) > CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{where} is format {fmt}; this version reads up to format "
                f"{CHECKPOINT_FORMAT} (written by a newer version?)"
            )
        else:
            state = _unpickle(outer["state"], where)
        return Checkpoint(row.partition, row.fence, row.saved_at, row.event_time, state, fmt)


def _unpickle(blob: bytes, where: str) -> Any:
    try:
        return pickle.loads(blob)  # trusted: see the module docstring
    except Exception as exc:  # a newer version's classes, or damaged bytes
        raise CheckpointError(f"{where} cannot be read ({type(exc).__name__}: {exc})") from exc


def _is_envelope(obj: Any) -> bool:
    # a bare state (format 0) is the tier's Partition.state(), a dict with other keys
    return (
        isinstance(obj, dict)
        and obj.keys() == {"format", "state"}
        and type(obj["format"]) is int
        and isinstance(obj["state"], bytes)
    )
