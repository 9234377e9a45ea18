"""The SQLite spool: priority lane, overflow, persisted seq, valid payloads, kill -9."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edge.spool import Item, Spool
from schemas.codec import decode_batch

ROOT = Path(__file__).resolve().parents[2]
SENT_AT = "2026-06-01T00:00:00.000Z"


def reading(i: int, device: str = "wb-1") -> Item:
    ts = f"2026-06-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i // 3600:03d}Z"
    body = {"device_id": device, "kind": "water_block", "ts": ts, "values": {"flow": float(i)}}
    return Item(json.dumps(body).encode())


def button(i: int) -> Item:
    body = {"device_id": "cu-7", "kind": "call_unit", "ts": SENT_AT, "values": {"event": "button"}}
    return Item(json.dumps(body).encode(), priority=True)


def status(state: str) -> Item:
    body = {"device_id": "wb-1", "ts": SENT_AT, "state": state, "reason": "timeout"}
    return Item(json.dumps(body).encode(), priority=True, status=True)


def test_priority_items_go_ahead_of_the_backlog(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    spool.add([reading(i) for i in range(1000)])
    spool.add([button(0), status("offline")])
    first = spool.take_batch("gw-1", SENT_AT, 500)
    assert first is not None and first.size == 2
    batch = decode_batch(first.payload)
    assert batch.seq == 0 and batch.readings[0].kind == "call_unit"
    assert batch.statuses[0].state == "offline" and batch.statuses[0].reason == "timeout"
    second = spool.take_batch("gw-1", SENT_AT, 500)
    assert second is not None
    flows = [r.values.flow for r in decode_batch(second.payload).readings]  # type: ignore[union-attr]
    assert flows == [float(i) for i in range(500)]  # oldest first
    assert spool.depth == 1002
    spool.ack(0)
    spool.ack(1)
    assert spool.depth == 500
    spool.close()


def test_overflow_drops_oldest_ordinary_items_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_items=100)
    spool.add([button(0)])
    assert spool.add([reading(i) for i in range(150)]) == 51
    assert spool.depth == 100 and spool.dropped == 51
    spool.close()
    again = Spool(tmp_path / "s.db", max_items=100)
    assert again.dropped == 51  # persisted: the health report keeps counting
    b = again.take_batch("gw-1", SENT_AT, 1000)
    assert b is not None and b.size == 1  # the priority item survived
    b = again.take_batch("gw-1", SENT_AT, 1000)
    assert b is not None
    flows = [r.values.flow for r in decode_batch(b.payload).readings]  # type: ignore[union-attr]
    assert flows == [float(i) for i in range(51, 150)]
    again.close()


def test_seq_and_unacked_batches_survive_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    spool.add([reading(i) for i in range(10)])
    b0 = spool.take_batch("gw-1", SENT_AT, 4)
    b1 = spool.take_batch("gw-1", SENT_AT, 4)
    assert b0 is not None and b1 is not None and (b0.seq, b1.seq) == (0, 1)
    spool.ack(0)
    spool.close()
    spool = Spool(tmp_path / "s.db")
    assert [(b.seq, b.payload) for b in spool.unacked()] == [(1, b1.payload)]  # byte-identical
    b2 = spool.take_batch("gw-1", SENT_AT, 4)
    assert b2 is not None and b2.seq == 2 and b2.size == 2
    spool.ack(1)
    spool.ack(2)
    spool.close()
    spool = Spool(tmp_path / "s.db")  # everything acked: the seq still continues
    spool.add([reading(99)])
    b3 = spool.take_batch("gw-1", SENT_AT, 4)
    assert b3 is not None and b3.seq == 3 and spool.last_seq == 3
    spool.close()


def test_committed_items_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    code = (
        "import os, signal, json\n"
        "from pathlib import Path\n"
        "from edge.spool import Item, Spool\n"
        f"s = Spool(Path({str(db)!r}))\n"
        "s.add([Item(json.dumps({'n': i}).encode()) for i in range(5000)])\n"
        "s.take_batch('gw-1', '2026-06-01T00:00:00.000Z', 100)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False)
    assert proc.returncode == -9
    spool = Spool(db)
    assert spool.waiting == 4900 and spool.depth == 5000
    assert [b.seq for b in spool.unacked()] == [0]
    spool.close()


def test_the_boot_id_names_the_seq_counter_and_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    boot = spool.boot_id
    spool.add([reading(0)])
    assert spool.take_batch("gw", "2026-06-01T00:00:00Z", 10) is not None
    spool.close()
    again = Spool(tmp_path / "spool.db")
    assert (again.boot_id, again.last_seq) == (boot, 0)  # same counter: seq goes on
    again.close()
    fresh = Spool(tmp_path / "new.db")  # a lost spool: seq restarts with a new boot id
    assert fresh.last_seq == -1 and fresh.boot_id != boot and len(fresh.boot_id) == 16
    fresh.close()
