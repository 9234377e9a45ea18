"""Exact seq gap and duplicate accounting for ingest workers sharing one subscription.

With a round-robin shared subscription each worker receives only part of a gateway's
batches, so no worker alone can tell a skipped seq from one a peer received. Instead:

- every worker adds the seqs it has durably stored to the table ``gateway_seqs``
  (:class:`~cloud.db.models.GatewaySeqRow`), in bulk from :meth:`Registry.flush`
  (:func:`record`);
- every worker now and then *sweeps* the ledger (:func:`sweep`). Per gateway,
  ``gateways.seq_checked`` is a watermark: every seq below it is settled. Rows written
  more than the grace period ago are settled; the highest settled seq is the horizon.
  From the watermark to the horizon a seq without a row is missing (a gap) and a seq
  with several rows was stored more than once (duplicates). A row below the watermark
  arrived after its seq was settled: it fills a gap counted earlier, or is a duplicate;
- the watermark moves past the horizon by a compare-and-set ``UPDATE ... WHERE
  seq_checked = <the value this sweep read>`` that also adds the counts to
  ``gateways.gaps`` and ``gateways.duplicates``, and deletes the rows it settled (by id,
  so a row written meanwhile is settled next time). When several workers sweep at once,
  exactly one wins per gateway and the others roll back: their compare-and-set finds
  the watermark moved, or (when only late rows were settled and it did not move) their
  rows already deleted;
- a counted gap leaves a marker row (``missing``), so a batch arriving after the grace
  period fills the gap again (``gaps`` is "currently missing", as in memory). Markers
  are kept for the last :data:`SEQ_WINDOW` seqs below the watermark;
- a settled seq :data:`SEQ_RESET` or more below the watermark is a gateway whose
  counter restarted: the watermark restarts at the new counter and the gap count at
  zero, as :meth:`Registry.check_seq` does in memory.

Rows are stamped with the writing worker's wall clock and compared with the sweeping
worker's: keep hosts in NTP sync (skew far below the grace period).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, func, insert, literal, select, true, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import GatewayRow, GatewaySeqRow

log = logging.getLogger(__name__)

# shared with cloud.registry's in-memory accounting
SEQ_WINDOW = 4096  # seqs remembered per gateway (in memory: seen and missing; here: gap markers)
SEQ_RESET = 100_000  # a seq this far below the last one is a gateway whose counter restarted
_CHUNK = 500  # ids per DELETE ... IN (...)
# Core tables: the sweep handles plain rows, without the ORM's per-statement work
_S = cast(Table, GatewaySeqRow.__table__)
_G = cast(Table, GatewayRow.__table__)


@dataclass(frozen=True)
class SeqSettled:
    """What one sweep settled for one gateway."""

    gateway_id: str
    start: int  # first seq checked (the watermark before)
    end: int  # last seq checked; the watermark is now end + 1 (end < start: none)
    missing: int = 0  # seqs in start..end never stored: new gaps
    first_missing: int | None = None
    duplicates: int = 0  # extra copies stored of seqs
    filled: int = 0  # gaps counted earlier, filled by a batch arriving late
    reset_from: int | None = None  # the counter restarted: the watermark before


@dataclass
class _Plan:
    settled: SeqSettled
    expected: int | None  # seq_checked as read: the compare-and-set condition
    watermark: int
    reset: bool
    row_ids: list[int] = field(default_factory=list)  # ledger rows settled
    marker_ids: list[int] = field(default_factory=list)  # gap markers filled (or stale)
    new_markers: list[int] = field(default_factory=list)
    stale_markers: bool = False  # gap markers now more than SEQ_WINDOW below: delete them


def record(session: Session, seqs: Sequence[tuple[str, int]], at: datetime) -> None:
    """Add stored seqs ``(gateway_id, seq)`` to the ledger, in one bulk INSERT."""
    if seqs:
        session.connection().execute(
            insert(_S),
            [{"gateway_id": g, "seq": s, "recorded_at": at, "missing": False} for g, s in seqs],
        )


def sweep(
    sm: sessionmaker[Session], *, grace_s: float, now: datetime | None = None
) -> list[SeqSettled]:
    """Settle the ledger: read it in bulk, then one short transaction per gateway.

    Returns what this call settled (gateways another sweep won are left out). On a
    database error it logs, stops and returns what it committed; the next sweep goes on.
    """
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=grace_s)
    settled: list[SeqSettled] = []
    gateway_id = None
    try:
        with sm() as session:
            plans = _plans(session, cutoff)
        for plan in plans:
            gateway_id = plan.settled.gateway_id
            with sm() as session:
                if _apply(session, plan, now):
                    session.commit()
                    settled.append(plan.settled)
                else:
                    session.rollback()
    except SQLAlchemyError as exc:
        log.warning("seq_sweep_failed gateway=%s reason=%s", gateway_id, exc)
    return settled


def _plans(session: Session, cutoff: datetime) -> list[_Plan]:
    """What settling each gateway would change, from a few bulk reads (no writes)."""
    conn = session.connection()
    watermarks: dict[str, int | None] = {
        g: w for g, w in conn.execute(select(_G.c.gateway_id, _G.c.seq_checked))
    }
    real = _S.c.missing.is_(False)
    # per gateway, the highest settled seq; every row at or below it gets settled
    horizon = (
        select(_S.c.gateway_id, func.max(_S.c.seq).label("top"))
        .where(real, _S.c.recorded_at <= cutoff)
        .group_by(_S.c.gateway_id)
        .subquery()
    )
    rows: dict[str, list[tuple[int, int, datetime]]] = {}
    query = (
        select(_S.c.id, _S.c.gateway_id, _S.c.seq, _S.c.recorded_at)
        .join_from(_S, horizon, _S.c.gateway_id == horizon.c.gateway_id)
        .where(real, _S.c.seq <= horizon.c.top)
    )
    for row_id, gateway_id, seq, at in conn.execute(query):
        rows.setdefault(gateway_id, []).append((row_id, seq, _utc(at)))
    lowest_marker: dict[str, int] = {
        g: m
        for g, m in conn.execute(
            select(_S.c.gateway_id, func.min(_S.c.seq))
            .where(_S.c.missing.is_(True))
            .group_by(_S.c.gateway_id)
        )
    }
    plans: list[_Plan] = []
    for gateway_id in sorted(rows):
        if gateway_id not in watermarks:
            continue  # its gateway row comes in the same flush as its seqs; next time
        expected = watermarks[gateway_id]
        mine = rows[gateway_id]
        if expected is not None and any(
            seq <= expected - SEQ_RESET and at <= cutoff for _, seq, at in mine
        ):
            plan = _plan_reset(session, gateway_id, expected, cutoff)
        else:
            base = expected if expected is not None else min(seq for _, seq, _ in mine)
            top = max((seq for _, seq, at in mine if at <= cutoff and seq >= base), default=None)
            end = top if top is not None else base - 1  # else: only late rows
            late = [seq for _, seq, _ in mine if seq < base]
            markers = {}
            if late and gateway_id in lowest_marker:
                markers = _markers(session, gateway_id, min(late), base)
            plan = _count(gateway_id, expected, base, end, [(i, s) for i, s, _ in mine], markers)
            low = lowest_marker.get(gateway_id)
            plan.stale_markers = low is not None and low < plan.watermark - SEQ_WINDOW
        plans.append(plan)
    return plans


def _plan_reset(session: Session, gateway_id: str, expected: int, cutoff: datetime) -> _Plan:
    """The gateway's counter restarted: settle the new counter's rows from its lowest,
    drop the old counter's rows and gap markers, restart the gap count."""
    conn = session.connection()
    limit = expected - SEQ_RESET
    mine = (_S.c.gateway_id == gateway_id, _S.c.missing.is_(False))
    new = _S.c.seq <= limit
    base = conn.execute(select(func.min(_S.c.seq)).where(*mine, new)).scalar_one()
    end = conn.execute(
        select(func.max(_S.c.seq)).where(*mine, new, _S.c.recorded_at <= cutoff)
    ).scalar_one()
    rows = [(i, s) for i, s in conn.execute(select(_S.c.id, _S.c.seq).where(*mine, new))]
    old = list(conn.execute(select(_S.c.id).where(*mine, _S.c.seq > limit)).scalars())
    plan = _count(gateway_id, expected, base, end, [r for r in rows if r[1] <= end], {})
    plan.settled = replace(plan.settled, reset_from=expected)
    plan.reset = True
    plan.row_ids += old
    return plan


def _markers(session: Session, gateway_id: str, low: int, base: int) -> dict[int, int]:
    """The gap markers ``{seq: id}`` of a gateway from ``low`` up to ``base``."""
    query = select(_S.c.seq, _S.c.id).where(
        _S.c.gateway_id == gateway_id, _S.c.missing.is_(True), _S.c.seq >= low, _S.c.seq < base
    )
    return {seq: row_id for seq, row_id in session.connection().execute(query)}


def _count(
    gateway_id: str,
    expected: int | None,
    base: int,
    end: int,
    rows: list[tuple[int, int]],
    markers: dict[int, int],
) -> _Plan:
    """Settle seqs ``base..end`` from the ledger ``rows`` (id, seq), all at or below
    ``end``; rows below ``base`` came late: they fill one of ``markers`` or are repeats."""
    counts = Counter(seq for _, seq in rows)
    window = sorted(s for s in counts if s >= base)
    missing = (end - base + 1) - len(window)
    duplicates = sum(counts[s] - 1 for s in window)
    first_missing = None
    if missing:
        first_missing = base
        for s in window:  # the first hole in base, base + 1, ...
            if s != first_missing:
                break
            first_missing += 1
    marker_ids: list[int] = []
    filled = 0
    for s, n in counts.items():
        if s >= base:
            continue
        if s in markers:  # a gap counted earlier: filled after all
            filled += 1
            marker_ids.append(markers[s])
            duplicates += n - 1
        else:  # settled already: stored again
            duplicates += n
    present = set(window)
    return _Plan(
        settled=SeqSettled(
            gateway_id=gateway_id,
            start=base,
            end=end,
            missing=missing,
            first_missing=first_missing,
            duplicates=duplicates,
            filled=filled,
        ),
        expected=expected,
        watermark=end + 1,
        reset=False,
        row_ids=[i for i, _ in rows],
        marker_ids=marker_ids,
        new_markers=[
            s for s in range(max(base, end + 1 - SEQ_WINDOW), end + 1) if s not in present
        ],
    )


def _apply(session: Session, plan: _Plan, now: datetime) -> bool:
    """Compare-and-set the watermark with the counts, then delete what was settled. False:
    another sweep settled it first (the caller rolls back).

    The watermark alone does not tell two sweeps apart when neither moves it (only late
    rows to settle), so every row this sweep counted must also still be there to delete.
    """
    conn = session.connection()
    s = plan.settled
    G = _G.c
    unchanged = G.seq_checked.is_(None) if plan.expected is None else G.seq_checked == plan.expected
    gaps = literal(s.missing) if plan.reset else func.coalesce(G.gaps, 0) + (s.missing - s.filled)
    result = conn.execute(
        update(_G)
        .where(G.gateway_id == s.gateway_id, unchanged)
        .values(
            seq_checked=plan.watermark,
            gaps=gaps,
            duplicates=func.coalesce(G.duplicates, 0) + s.duplicates,
        )
    )
    if result.rowcount != 1:
        return False
    for ids in _chunks(plan.row_ids + plan.marker_ids):
        if conn.execute(delete(_S).where(_S.c.id.in_(ids))).rowcount != len(ids):
            return False
    if plan.reset or plan.stale_markers:
        stale = true() if plan.reset else _S.c.seq < plan.watermark - SEQ_WINDOW
        conn.execute(
            delete(_S).where(_S.c.gateway_id == s.gateway_id, _S.c.missing.is_(True), stale)
        )
    if plan.new_markers:
        conn.execute(
            insert(_S),
            [
                {"gateway_id": s.gateway_id, "seq": q, "recorded_at": now, "missing": True}
                for q in plan.new_markers
            ],
        )
    return True


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    batch: list[int] = []
    for i in ids:
        batch.append(i)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch
