"""Exact seq gap and duplicate accounting for ingest workers sharing one subscription.

With a round-robin shared subscription each worker receives only part of a gateway's
batches, so no worker alone can tell a skipped seq from one a peer received. Instead:

- every worker adds the seqs it has durably stored to the table ``gateway_seq_blocks``
  (:class:`~cloud.db.models.GatewaySeqBlock`), one packed block per gateway per
  :meth:`Registry.flush` (:func:`record`). A row per batch cost a worker about 40 µs of
  CPU per batch (insert, read back, delete: about a sixth of the ingest's CPU at full
  rate); a block costs that per gateway every 2 s;
- every worker now and then *sweeps* the ledger (:func:`sweep`). Per gateway,
  ``gateways.seq_checked`` is a watermark: every seq below it is settled. Blocks written
  more than the grace period ago are settled; their highest seq is the horizon, and
  every seq up to it is settled, whichever block holds it. From the watermark to the
  horizon a seq in no block is missing (a gap) and a seq held more than once was stored
  more than once (duplicates). A seq below the watermark arrived after it was settled:
  it fills a gap counted earlier, or is a duplicate;
- the watermark moves past the horizon by a compare-and-set ``UPDATE ... WHERE
  seq_checked = <the value this sweep read>`` that also adds the counts to
  ``gateways.gaps`` and ``gateways.duplicates``, and deletes the blocks it settled (by
  id; a block only partly settled is written back as a new block with the rest). When
  several workers sweep at once, exactly one wins per gateway and the others roll back:
  their compare-and-set finds the watermark moved, or (when only late seqs were settled
  and it did not move) a block they settled already deleted;
- a counted gap leaves a marker (a block with ``missing`` set), so a batch arriving
  after the grace period fills the gap again (``gaps`` is "currently missing", as in
  memory). Markers are kept at least for the last :data:`SEQ_WINDOW` seqs below the
  watermark;
- a settled seq :data:`SEQ_RESET` or more below the watermark is a gateway whose
  counter restarted: the watermark restarts at the new counter and the gap count at
  zero, as :meth:`Registry.check_seq` does in memory.

Blocks are stamped with the writing worker's wall clock and compared with the sweeping
worker's: keep hosts in NTP sync (skew far below the grace period).
"""

from __future__ import annotations

import logging
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, literal, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import GatewayRow, GatewaySeqBlock

log = logging.getLogger(__name__)

# shared with cloud.registry's in-memory accounting
SEQ_WINDOW = 4096  # seqs remembered per gateway (in memory: seen and missing; here: gap markers)
SEQ_RESET = 100_000  # a seq this far below the last one is a gateway whose counter restarted
SEQ_MAX = 2**63 - 1  # the wire schema's bound: a seq fits an int64
_CHUNK = 500  # ids per DELETE ... IN (...)
# Core tables: the sweep handles plain rows, without the ORM's per-statement work
_B = cast(Table, GatewaySeqBlock.__table__)
_G = cast(Table, GatewayRow.__table__)


def pack(seqs: Sequence[int]) -> bytes:
    """Sorted seqs as int64 little-endian (one C call each way, any database's blob)."""
    packed = array("q", sorted(seqs))
    if sys.byteorder != "little":  # pragma: no cover - the CI machines are little-endian
        packed.byteswap()
    return packed.tobytes()


def unpack(data: bytes) -> list[int]:
    packed = array("q")
    packed.frombytes(data)
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return packed.tolist()


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


@dataclass(frozen=True)
class _Block:
    id: int
    at: datetime
    missing: bool
    seqs: list[int]  # sorted


@dataclass
class _Plan:
    settled: SeqSettled
    expected: int | None  # seq_checked as read: the compare-and-set condition
    watermark: int
    reset: bool
    gone: list[int] = field(default_factory=list)  # ids of the blocks this sweep settled
    # what those blocks hold beyond this sweep: (missing, recorded_at, seqs), written back
    rest: list[tuple[bool, datetime, list[int]]] = field(default_factory=list)
    new_markers: list[int] = field(default_factory=list)
    stale_markers: bool = False  # gap markers now more than SEQ_WINDOW below: delete them


def record(session: Session, seqs: Sequence[tuple[str, int]], at: datetime) -> None:
    """Add stored seqs ``(gateway_id, seq)`` to the ledger: one block per gateway, in one
    bulk INSERT."""
    by_gateway: dict[str, list[int]] = {}
    for gateway_id, seq in seqs:
        by_gateway.setdefault(gateway_id, []).append(seq)
    rows = [_row(gateway_id, False, at, mine) for gateway_id, mine in by_gateway.items()]
    if rows:
        session.connection().execute(insert(_B), rows)


def _row(gateway_id: str, missing: bool, at: datetime, seqs: Sequence[int]) -> dict[str, Any]:
    return {
        "gateway_id": gateway_id,
        "recorded_at": at,
        "missing": missing,
        "lo": min(seqs),
        "hi": max(seqs),
        "seqs": pack(seqs),
    }


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
    real = _B.c.missing.is_(False)
    # per gateway the horizon: the highest seq of the blocks past the grace period
    horizon = (
        select(_B.c.gateway_id, func.max(_B.c.hi).label("top"))
        .where(real, _B.c.recorded_at <= cutoff)
        .group_by(_B.c.gateway_id)
        .subquery()
    )
    blocks: dict[str, list[_Block]] = {}
    tops: dict[str, int] = {}
    query = (
        select(_B.c.id, _B.c.gateway_id, _B.c.recorded_at, _B.c.seqs, horizon.c.top)
        .join_from(_B, horizon, _B.c.gateway_id == horizon.c.gateway_id)
        .where(real, _B.c.lo <= horizon.c.top)
    )
    for block_id, gateway_id, at, data, top in conn.execute(query):
        blocks.setdefault(gateway_id, []).append(_Block(block_id, _utc(at), False, unpack(data)))
        tops[gateway_id] = top
    lowest_marker: dict[str, int] = {
        g: m
        for g, m in conn.execute(
            select(_B.c.gateway_id, func.min(_B.c.lo))
            .where(_B.c.missing.is_(True))
            .group_by(_B.c.gateway_id)
        )
    }
    plans: list[_Plan] = []
    for gateway_id in sorted(blocks):
        if gateway_id not in watermarks:
            continue  # its gateway row comes in the same flush as its seqs; next time
        expected, mine, top = watermarks[gateway_id], blocks[gateway_id], tops[gateway_id]
        if expected is not None and any(
            b.at <= cutoff and b.seqs[0] <= expected - SEQ_RESET for b in mine
        ):
            plan = _plan_reset(session, gateway_id, expected, cutoff)
        else:
            plan = _plan(session, gateway_id, expected, top, mine, lowest_marker)
        plans.append(plan)
    return plans


def _plan(
    session: Session,
    gateway_id: str,
    expected: int | None,
    top: int,
    mine: list[_Block],
    lowest_marker: dict[str, int],
) -> _Plan:
    """Settle every seq up to the horizon ``top``; what the blocks hold above it waits."""
    seqs = [s for b in mine for s in b.seqs if s <= top]
    base = expected if expected is not None else min(seqs)
    end = top if top >= base else base - 1  # else: only late seqs
    late = [s for s in seqs if s < base]
    markers: list[_Block] = []
    if late and gateway_id in lowest_marker:
        markers = _markers(session, gateway_id, min(late), base)
    plan = _count(gateway_id, expected, base, end, seqs, markers)
    _settle(plan, mine, lambda s: s <= top)
    low = lowest_marker.get(gateway_id)
    plan.stale_markers = low is not None and low < plan.watermark - SEQ_WINDOW
    return plan


def _plan_reset(session: Session, gateway_id: str, expected: int, cutoff: datetime) -> _Plan:
    """The gateway's counter restarted: settle the new counter's seqs from its lowest,
    drop the old counter's seqs and gap markers, restart the gap count."""
    limit = expected - SEQ_RESET
    query = select(_B.c.id, _B.c.recorded_at, _B.c.seqs).where(
        _B.c.gateway_id == gateway_id, _B.c.missing.is_(False)
    )
    mine = [
        _Block(block_id, _utc(at), False, unpack(data))
        for block_id, at, data in session.connection().execute(query)
    ]
    new = [s for b in mine for s in b.seqs if s <= limit]
    base = min(new)
    end = max((s for b in mine if b.at <= cutoff for s in b.seqs if s <= limit), default=base - 1)
    plan = _count(gateway_id, expected, base, end, [s for s in new if s <= end], [])
    plan.settled = replace(plan.settled, reset_from=expected)
    plan.reset = True
    # the old counter's seqs go too: only the new counter's beyond the horizon wait
    _settle(plan, mine, lambda s: s <= end or s > limit)
    return plan


def _settle(plan: _Plan, blocks: Iterable[_Block], done: Any) -> None:
    """Delete ``blocks``, writing back the seqs of each that ``done`` does not take."""
    for b in blocks:
        plan.gone.append(b.id)
        rest = [s for s in b.seqs if not done(s)]
        if rest:
            plan.rest.append((b.missing, b.at, rest))


def _markers(session: Session, gateway_id: str, low: int, base: int) -> list[_Block]:
    """The gap-marker blocks of a gateway holding seqs from ``low`` up to ``base``."""
    query = select(_B.c.id, _B.c.recorded_at, _B.c.seqs).where(
        _B.c.gateway_id == gateway_id, _B.c.missing.is_(True), _B.c.hi >= low, _B.c.lo < base
    )
    return [
        _Block(block_id, _utc(at), True, unpack(data))
        for block_id, at, data in session.connection().execute(query)
    ]


def _count(
    gateway_id: str,
    expected: int | None,
    base: int,
    end: int,
    seqs: list[int],
    markers: list[_Block],
) -> _Plan:
    """Settle seqs ``base..end`` from the ledger's ``seqs`` (with repeats), all at or
    below ``end``; seqs below ``base`` came late: they fill a gap marker or are repeats."""
    counts = Counter(seqs)
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
    marked = {s for b in markers for s in b.seqs}
    filled: set[int] = set()
    for s, n in counts.items():
        if s >= base:
            continue
        if s in marked:  # a gap counted earlier: filled after all
            filled.add(s)
            duplicates += n - 1
        else:  # settled already: stored again
            duplicates += n
    present = set(window)
    plan = _Plan(
        settled=SeqSettled(
            gateway_id=gateway_id,
            start=base,
            end=end,
            missing=missing,
            first_missing=first_missing,
            duplicates=duplicates,
            filled=len(filled),
        ),
        expected=expected,
        watermark=end + 1,
        reset=False,
        new_markers=[
            s for s in range(max(base, end + 1 - SEQ_WINDOW), end + 1) if s not in present
        ],
    )
    _settle(plan, (b for b in markers if filled.intersection(b.seqs)), filled.__contains__)
    return plan


def _apply(session: Session, plan: _Plan, now: datetime) -> bool:
    """Compare-and-set the watermark with the counts, then delete what was settled. False:
    another sweep settled it first (the caller rolls back).

    The watermark alone does not tell two sweeps apart when neither moves it (only late
    seqs to settle), so every block this sweep counted must also still be there to delete.
    """
    conn = session.connection()
    s = plan.settled
    G = _G.c
    unchanged = G.seq_checked.is_(None) if plan.expected is None else G.seq_checked == plan.expected
    gaps = literal(s.missing) if plan.reset else func.coalesce(G.gaps, 0) + (s.missing - s.filled)
    result = conn.execute(
        _G.update()
        .where(G.gateway_id == s.gateway_id, unchanged)
        .values(
            seq_checked=plan.watermark,
            gaps=gaps,
            duplicates=func.coalesce(G.duplicates, 0) + s.duplicates,
        )
    )
    if result.rowcount != 1:
        return False
    for ids in _chunks(plan.gone):
        if conn.execute(delete(_B).where(_B.c.id.in_(ids))).rowcount != len(ids):
            return False
    mine = (_B.c.gateway_id == s.gateway_id, _B.c.missing.is_(True))
    if plan.reset:  # before the new markers go in: none of the old count's stay
        conn.execute(delete(_B).where(*mine))
    rows = [_row(s.gateway_id, missing, at, rest) for missing, at, rest in plan.rest]
    if plan.new_markers:
        rows.append(_row(s.gateway_id, True, now, plan.new_markers))
    if rows:
        conn.execute(insert(_B), rows)
    if plan.stale_markers:
        conn.execute(delete(_B).where(*mine, _B.c.hi < plan.watermark - SEQ_WINDOW))
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
