"""The shared seq ledger: exact gaps and duplicates when several workers share a stream.

Each "worker" here is its own :class:`Registry` on its own engine over one database
(SQLite, then PostgreSQL: the ``db_url`` fixture),
doing what ``IngestWorker`` does: ``check_seq`` as it decodes, ``record_seq`` after the
write (except a DUPLICATE), ``flush``, and now and then ``sweep_seqs``. Time passing is
the sweep's ``now`` moved past the grace period.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from cloud import seq_ledger
from cloud.db import migrations
from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.db.models import GatewayRow, GatewaySeqBlock
from cloud.registry import Registry, SeqVerdict
from schemas import GatewayState, GatewayStatus

GRACE = 30.0
GW = "gw-s"


def later(seconds: float = GRACE + 1) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.fixture
def db(db_url: str) -> str:
    url = db_url
    engine = make_engine(url)
    create_all(engine)
    engine.dispose()
    return url


class Worker:
    """One ingest worker's view: its own engine and registry, in a shared group."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        self.sm: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.registry = Registry(self.sm)
        assert self.registry.share_seqs()

    def store(self, seqs: Iterable[int], gateway: str = GW) -> list[SeqVerdict]:
        verdicts = []
        for seq in seqs:
            check = self.registry.check_seq(gateway, seq, (seq,))
            verdicts.append(check.verdict)
            assert check.missing == 0 and not check.filled  # never judged per worker
            if check.verdict not in (SeqVerdict.DUPLICATE, SeqVerdict.ROLLBACK):
                self.registry.record_seq(gateway, seq)
        self.registry.flush()
        return verdicts

    def sweep(self, now: datetime | None = None) -> list[seq_ledger.SeqSettled]:
        return self.registry.sweep_seqs(GRACE, now=now or later())


@pytest.fixture
def workers(db: str) -> Iterable[tuple[Worker, Worker]]:
    pair = (Worker(db), Worker(db))
    yield pair
    for w in pair:
        w.engine.dispose()


def gateway_row(w: Worker, gateway: str = GW) -> GatewayRow:
    with w.sm() as s:
        row = s.get(GatewayRow, gateway)
        assert row is not None
        return row


def ledger(w: Worker, *, missing: bool = False) -> list[int]:
    with w.sm() as s:
        blocks = s.scalars(
            select(GatewaySeqBlock.seqs).where(GatewaySeqBlock.missing.is_(missing))
        ).all()
        return sorted(seq for block in blocks for seq in seq_ledger.unpack(block))


def gap_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "gateway_seq_gap " in r.getMessage()]


def test_interleaved_seqs_of_two_workers_give_no_gaps(
    workers: tuple[Worker, Worker], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    a, b = workers
    # round robin: each worker sees every other batch
    a.store(range(0, 100, 2))
    b.store(range(1, 100, 2))
    assert a.registry.gateway(GW).gaps == 0  # type: ignore[union-attr]
    assert b.registry.gateway(GW).gaps == 0  # type: ignore[union-attr]
    settled = a.sweep()
    assert [(s.start, s.end, s.missing, s.duplicates) for s in settled] == [(0, 99, 0, 0)]
    row = gateway_row(a)
    assert (row.gaps, row.duplicates, row.seq_checked, row.last_seq) == (0, 0, 100, 99)
    assert ledger(a) == [] and ledger(a, missing=True) == []
    assert b.sweep() == []  # nothing left to settle
    assert gap_logs(caplog) == []


def test_a_missing_seq_is_one_gap_after_the_grace_period_and_not_before(
    workers: tuple[Worker, Worker], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    a, b = workers
    a.store(s for s in range(40) if s % 2 == 0 and s != 10)
    b.store(s for s in range(40) if s % 2 == 1)
    assert a.sweep(now=datetime.now(UTC)) == []
    assert a.sweep(now=later(GRACE - 5)) == []  # still within the grace period
    assert gateway_row(a).gaps == 0 and gap_logs(caplog) == []

    settled = b.sweep()
    assert [(s.missing, s.first_missing, s.end) for s in settled] == [(1, 10, 39)]
    assert gateway_row(a).gaps == 1
    assert gap_logs(caplog) == [
        f"gateway_seq_gap gateway={GW} missing=1 first_missing=10 checked_from=0 checked_to=39"
    ]
    assert ledger(a, missing=True) == [10]  # a marker, should seq 10 turn up after all
    # the gap is in both workers' view of /gateways once each has swept
    assert a.sweep() == []
    assert a.registry.gateway(GW).gaps == b.registry.gateway(GW).gaps == 1  # type: ignore[union-attr]
    assert a.sweep() == [] and gateway_row(a).gaps == 1  # counted once

    # seq 10 arrives very late: it fills the gap instead of counting as a duplicate
    b.store([10])
    settled = a.sweep()
    assert [(s.filled, s.duplicates, s.missing) for s in settled] == [(1, 0, 0)]
    row = gateway_row(a)
    assert (row.gaps, row.duplicates, row.seq_checked) == (0, 0, 40)
    assert ledger(a) == [] and ledger(a, missing=True) == []


def test_duplicates_within_and_across_workers_are_counted_once_each(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    a.store(range(5))
    assert b.store([2, 3]) == [SeqVerdict.NEW, SeqVerdict.NEW]  # b cannot know: the sweep can
    assert a.store([4]) == [SeqVerdict.DUPLICATE]  # a saw 4 itself: counted at once
    assert gateway_row(a).duplicates == 1
    settled = a.sweep()
    assert [(s.duplicates, s.missing) for s in settled] == [(2, 0)]
    assert gateway_row(a).duplicates == 3
    # a re-send of a seq settled long ago (b does not remember it) is a duplicate too
    b.store([1])
    assert [s.duplicates for s in b.sweep()] == [1]
    row = gateway_row(a)
    assert (row.gaps, row.duplicates) == (0, 4)
    assert a.sweep() == []
    assert a.registry.gateway(GW).duplicates == 4  # type: ignore[union-attr]


def test_concurrent_sweeps_settle_each_seq_once(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    a.store(s for s in range(0, 400, 2) if s != 100)
    b.store(s for s in range(1, 400, 2) if s != 301)
    b.store([7])  # one duplicate
    now = later()
    # both read the same watermark; only the first compare-and-set wins
    with a.sm() as sa, b.sm() as sb:
        cutoff = now - timedelta(seconds=GRACE)
        (plan_a,) = seq_ledger._plans(sa, cutoff)
        (plan_b,) = seq_ledger._plans(sb, cutoff)
        assert seq_ledger._apply(sa, plan_a, now)
        sa.commit()
        assert not seq_ledger._apply(sb, plan_b, now)
        sb.rollback()
    row = gateway_row(a)
    assert (row.gaps, row.duplicates, row.seq_checked) == (2, 1, 400)
    assert ledger(a) == [] and ledger(a, missing=True) == [100, 301]


def test_many_sweeps_at_once_count_each_gap_once(db: str) -> None:
    recorders = [Worker(db) for _ in range(2)]
    sweepers = [Worker(db) for _ in range(4)]
    missing = {100, 555, 556, 999}
    found: list[seq_ledger.SeqSettled] = []
    try:
        for start in range(0, 1200, 200):  # the stream goes on while they sweep
            for n, w in enumerate(recorders):
                w.store(s for s in range(start + n, start + 200, 2) if s not in missing)
            barrier = threading.Barrier(len(sweepers))

            def sweep(w: Worker, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                found.extend(w.sweep())

            threads = [threading.Thread(target=sweep, args=(w,)) for w in sweepers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        while sweepers[0].sweep():  # anything a failed (busy) sweep left over
            pass
        row = gateway_row(sweepers[0])
        assert (row.gaps, row.duplicates, row.seq_checked) == (4, 0, 1200)
        assert sum(s.missing for s in found) == 4  # every gap found by exactly one sweep
        assert sorted(s.start for s in found) == sorted({s.start for s in found})
    finally:
        for w in recorders + sweepers:
            w.engine.dispose()


def test_a_counter_reset_restarts_the_watermark_instead_of_counting_a_huge_gap(
    workers: tuple[Worker, Worker], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    a, b = workers
    a.store([500_000, 500_002])
    b.store([500_001, 500_004])
    a.sweep()
    row = gateway_row(a)
    assert (row.gaps, row.seq_checked) == (1, 500_005)
    # without a birth announcing a new counter, going back is a replay: refused
    assert a.store([0]) == [SeqVerdict.ROLLBACK]
    # the gateway restarted (reflashed, spool lost): its birth brings a new boot id, and
    # its counter starts again at 0 (every worker sees the birth: not a shared topic)
    for w in (a, b):
        w.registry.apply_status(
            GatewayStatus(gateway_id=GW, state=GatewayState.ONLINE, boot_id="boot-2")
        )
    assert a.store([0, 2]) == [SeqVerdict.RESET, SeqVerdict.NEW]
    b.store([1, 4])
    b.store([500_005])  # a straggler of the old counter
    settled = b.sweep()
    assert [(s.reset_from, s.start, s.end, s.missing) for s in settled] == [(500_005, 0, 4, 1)]
    row = gateway_row(a)
    assert (row.gaps, row.seq_checked) == (1, 5)  # seq 3 missing; nothing of the old count
    assert ledger(a) == [] and ledger(a, missing=True) == [3]
    messages = [r.getMessage() for r in caplog.records]
    assert f"gateway_seq_reset gateway={GW} from=500005 to=0" in messages
    assert [m for m in gap_logs(caplog) if "missing=1 " not in m] == []


def test_without_a_group_nothing_goes_to_the_ledger(db: str) -> None:
    engine = make_engine(db)
    registry = Registry(make_sessionmaker(engine))  # today's single-worker path
    for seq in (0, 1, 3):
        registry.check_seq(GW, seq, (seq,))
        registry.record_seq(GW, seq)
    registry.flush()
    assert registry.sweep_seqs(GRACE, now=later()) == []
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(func.count()).select_from(GatewaySeqBlock)) == 0
        row = s.get(GatewayRow, GW)
        assert row is not None and (row.gaps, row.seq_checked) == (1, None)
    engine.dispose()


def _old_types(engine: Engine) -> tuple[str, str, str]:
    """(datetime, false, true) as the earlier versions' DDL wrote them on this engine."""
    if engine.dialect.name == "postgresql":
        return "TIMESTAMP WITH TIME ZONE", "false", "true"
    return "DATETIME", "0", "1"


def test_a_database_of_the_previous_version_is_upgraded_by_its_migrations(db_url: str) -> None:
    """The gateways table of the first release: 32-bit last_seq, no watermark, no boot id."""
    engine = make_engine(db_url)
    dt, _, _ = _old_types(engine)
    with engine.begin() as conn:  # the gateways table as the previous version made it
        conn.execute(
            text(
                "CREATE TABLE gateways (gateway_id VARCHAR(64) NOT NULL PRIMARY KEY, "
                f"state VARCHAR(16) NOT NULL, state_since {dt}, last_seq INTEGER NOT NULL, "
                "gaps INTEGER NOT NULL, duplicates INTEGER NOT NULL, version VARCHAR(40), "
                "health JSON)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO gateways (gateway_id, state, last_seq, gaps, duplicates) "
                f"VALUES ('{GW}', 'online', 41, 3, 2)"
            )
        )
    assert migrations.current(engine) is None
    done = create_all(engine)  # what `akita cloud init-db` and every component do
    assert done[0].startswith("database made before migrations")
    assert migrations.current(engine) == migrations.head()
    assert create_all(engine) == []  # done already; safe to run again
    columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("gateways")}
    assert {"seq_checked", "boot_id"} <= set(columns)
    with engine.begin() as conn:  # a seq past 2**31 fits now (PostgreSQL's INTEGER: not)
        conn.execute(text(f"UPDATE gateways SET last_seq = {2**40} WHERE gateway_id = '{GW}'"))
        conn.execute(text(f"UPDATE gateways SET last_seq = 41 WHERE gateway_id = '{GW}'"))
    engine.dispose()

    a, b = Worker(db_url), Worker(db_url)
    try:
        assert a.registry.gateway(GW).gaps == 3  # type: ignore[union-attr]
        a.store([50, 52])
        b.store([51, 54])
        settled = a.sweep()  # no watermark yet: counting starts at the first seq recorded
        assert [(s.start, s.end, s.missing) for s in settled] == [(50, 54, 1)]
        row = gateway_row(a)
        assert (row.gaps, row.duplicates, row.seq_checked) == (4, 2, 55)
    finally:
        a.engine.dispose()
        b.engine.dispose()


def test_a_new_database_is_created_at_the_newest_revision(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert create_all(engine) == [f"schema created at revision {migrations.head()}"]
        assert migrations.current(engine) == migrations.head()
        assert "gateway_seq_blocks" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_concurrent_sweeps_of_late_rows_only_count_them_once(
    workers: tuple[Worker, Worker],
) -> None:
    """Late rows alone leave the watermark where it is: the rows themselves decide."""
    a, b = workers
    a.store(s for s in range(10) if s != 4)
    a.sweep()
    b.store([4, 6])  # seq 4 after all, and a re-send of 6
    now = later()
    cutoff = now - timedelta(seconds=GRACE)
    with a.sm() as sa, b.sm() as sb:
        (plan_a,) = seq_ledger._plans(sa, cutoff)
        (plan_b,) = seq_ledger._plans(sb, cutoff)
        assert plan_a.watermark == plan_b.watermark == 10
        assert seq_ledger._apply(sa, plan_a, now)
        sa.commit()
        assert not seq_ledger._apply(sb, plan_b, now)
        sb.rollback()
    row = gateway_row(a)
    assert (row.gaps, row.duplicates, row.seq_checked) == (0, 1, 10)
    assert ledger(a) == [] and ledger(a, missing=True) == []


def test_seqs_a_failed_flush_could_not_write_go_with_the_next_one(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    b.store([1])
    with a.engine.begin() as conn:  # the ledger is unusable for a while
        conn.execute(text("ALTER TABLE gateway_seq_blocks RENAME TO away"))
    a.store([0, 2])  # its flush fails: the seqs stay with the worker
    with a.engine.begin() as conn:
        conn.execute(text("ALTER TABLE away RENAME TO gateway_seq_blocks"))
    assert ledger(a) == [1]
    a.registry.flush()
    assert ledger(a) == [0, 1, 2]
    assert [(s.start, s.end, s.missing) for s in a.sweep()] == [(0, 2, 0)]


def test_a_block_settled_in_part_keeps_the_rest_for_a_later_sweep(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    t0 = datetime.now(UTC)
    a.store(range(5))
    with b.sm.begin() as s:  # b's flush 20 s later holds a repeat of 3, and 5 and 8
        seq_ledger.record(s, [(GW, 8), (GW, 3), (GW, 5)], t0 + timedelta(seconds=20))
    settled = a.sweep(now=t0 + timedelta(seconds=GRACE + 1))  # a's block is past the grace
    assert [(s.start, s.end, s.missing, s.duplicates) for s in settled] == [(0, 4, 0, 1)]
    assert ledger(a) == [5, 8]  # the part of b's block above the horizon waits
    settled = b.sweep(now=t0 + timedelta(seconds=GRACE + 21))
    assert [(s.start, s.end, s.missing, s.first_missing) for s in settled] == [(5, 8, 2, 6)]
    row = gateway_row(a)
    assert (row.gaps, row.duplicates, row.seq_checked) == (2, 1, 9)
    assert ledger(a) == [] and ledger(a, missing=True) == [6, 7]
    b.store([7])  # fills one of the two: its marker block is written back with the other
    assert [s.filled for s in a.sweep()] == [1]
    assert ledger(a, missing=True) == [6] and gateway_row(a).gaps == 1


def test_one_flush_is_one_block_per_gateway(workers: tuple[Worker, Worker]) -> None:
    a, _ = workers
    a.store(range(300), gateway="gw-1")
    a.store([9, 3, 3, 7], gateway="gw-2")  # the second 3 is a DUPLICATE: not recorded
    with a.sm() as s:
        rows = s.execute(
            select(GatewaySeqBlock.gateway_id, GatewaySeqBlock.lo, GatewaySeqBlock.hi)
        ).all()
    assert sorted(rows) == [("gw-1", 0, 299), ("gw-2", 3, 9)]
    assert seq_ledger.unpack(seq_ledger.pack([5, -1, 2**63 - 1, 0])) == [-1, 0, 5, 2**63 - 1]


def test_a_ledger_of_the_row_per_batch_version_is_moved_into_blocks(db_url: str) -> None:
    engine = make_engine(db_url)
    dt, false, true = _old_types(engine)
    serial = "SERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
    with engine.begin() as conn:  # the ledger as the previous version made it
        conn.execute(
            text(
                f"CREATE TABLE gateway_seqs (id {serial} NOT NULL PRIMARY KEY, gateway_id "
                f"VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, recorded_at {dt} NOT NULL, "
                "missing BOOLEAN NOT NULL)"
            )
        )
        rows = [(s, "2026-11-27 10:00:00.000000", false) for s in (11, 12, 14)]
        rows += [(10, "2026-11-27 09:00:00.000000", true)]  # a gap marker
        rows += [(15, "2026-11-27 10:00:02.000000", false)]
        for seq, at, missing in rows:
            conn.execute(
                text(
                    "INSERT INTO gateway_seqs (gateway_id, seq, recorded_at, missing) "
                    f"VALUES ('{GW}', {seq}, '{at}', {missing})"
                )
            )
    create_all(engine)  # what every component does on start
    assert "gateway_seqs" not in inspect(engine).get_table_names()
    assert create_all(engine) == []  # done: safe to run again
    engine.dispose()
    a = Worker(db_url)
    try:
        with a.sm() as s:
            blocks = s.execute(
                select(GatewaySeqBlock.missing, GatewaySeqBlock.lo, GatewaySeqBlock.hi)
            ).all()
        assert sorted(blocks) == [(False, 11, 14), (False, 15, 15), (True, 10, 10)]
        a.store([13])
        assert ledger(a) == [11, 12, 13, 14, 15] and ledger(a, missing=True) == [10]
        settled = a.sweep()
        assert [(s.start, s.end, s.missing) for s in settled] == [(11, 15, 0)]
    finally:
        a.engine.dispose()


def test_processes_starting_together_upgrade_once(db_url: str) -> None:
    """Every component runs the migrations on start; several at once must not collide."""
    engines = [make_engine(db_url) for _ in range(4)]
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        try:
            create_all(engine)
        except BaseException as exc:  # reported below, with the engine's dialect
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert migrations.current(engines[0]) == migrations.head()
    finally:
        for e in engines:
            e.dispose()
