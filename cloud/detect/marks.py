"""Idempotent detections: a redelivered reading opens no second alert.

The tier delivers readings at least once: after a failover the standby replays what
came after the last checkpoint, and its detectors, restored from that checkpoint, make
the same detections again at the same reading times. Per alert key (device + kind) the
newest detection applied is kept in ``detection_marks``; a detection at or before it is
a replay and is left out.

Marks are written right after the alert lifecycle committed the changes (in a
transaction of their own, fenced by the partition lease). A kill between the two can
apply the last detections once more on replay: the safe side for a life-safety path (a
warning repeated, never one lost).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.manager import dedup_key
from cloud.db.detect import DetectionMarkRow
from cloud.detect.base import Detection
from cloud.detect.lease import Lease, still_owner


def fresh(sm: sessionmaker[Session], detections: Sequence[Detection]) -> list[Detection]:
    """The detections not applied before (newer than their key's mark)."""
    if not detections:
        return []
    keys = {dedup_key(d.device_id, d.kind) for d in detections}
    with sm() as s:
        query = select(DetectionMarkRow.dedup_key, DetectionMarkRow.ts).where(
            DetectionMarkRow.dedup_key.in_(keys)
        )
        applied: dict[str, datetime] = {key: ts for key, ts in s.execute(query)}
    return [d for d in detections if _newer(d, applied.get(dedup_key(d.device_id, d.kind)))]


def _newer(d: Detection, mark: datetime | None) -> bool:
    return mark is None or d.ts > mark


def remember(
    sm: sessionmaker[Session], lease: Lease | None, detections: Sequence[Detection], now: datetime
) -> bool:
    """Mark ``detections`` applied; False (nothing marked): the lease was lost."""
    if not detections:
        return True
    newest: dict[str, Detection] = {}
    for d in detections:
        key = dedup_key(d.device_id, d.kind)
        if key not in newest or d.ts >= newest[key].ts:
            newest[key] = d
    with sm.begin() as s:
        if lease is not None and not still_owner(s, lease, now):
            return False
        # one SELECT for the turn's keys, not one per key (a burst of alerts)
        query = select(DetectionMarkRow).where(DetectionMarkRow.dedup_key.in_(newest))
        rows = {row.dedup_key: row for row in s.scalars(query)}
        for key, d in newest.items():
            row = rows.get(key)
            if row is None:
                s.add(DetectionMarkRow(dedup_key=key, ts=d.ts, active=d.active))
            elif d.ts > row.ts:
                row.ts, row.active = d.ts, d.active
    return True
