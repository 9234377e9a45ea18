"""Registry: devices from meta, gateway state from birth/Last Will, seq accounting,
write-through to the relational tables and reload in a new process."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.metrics import Metrics
from cloud.registry import Registry, SeqVerdict
from schemas import DeviceInfo, GatewayMeta, GatewayState, GatewayStatus

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _sessionmaker(url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    create_all(engine)
    return make_sessionmaker(engine)


def test_devices_tags_and_gateway_state_survive_a_restart(db_url: str) -> None:
    sm = _sessionmaker(db_url)  # SQLite, then PostgreSQL
    reg = Registry(sm)
    assert reg.tags_for("wb-1") == {"device": "wb-1"}
    meta = GatewayMeta(
        gateway_id="gw-a",
        ts=NOW,
        devices=[
            DeviceInfo(device_id="wb-1", kind="water_block", site="Kawabata", district="north"),
            DeviceInfo(device_id="fs-1", kind="flood_sensor"),
        ],
    )
    # a gateway's meta never creates devices: provisioning does
    assert reg.apply_meta(meta).changed == 0
    assert (
        reg.provision(
            "gw-a", [DeviceInfo(device_id=d.device_id, kind=d.kind) for d in meta.devices]
        )
        == 2
    )
    assert reg.apply_meta(meta).changed == 1  # fills wb-1's site and district
    assert reg.apply_meta(meta).changed == 0  # retained message seen again: nothing changes
    assert reg.tags_for("wb-1") == {
        "device": "wb-1",
        "gateway": "gw-a",
        "kind": "water_block",
        "site": "Kawabata",
        "district": "north",
    }
    assert reg.tags_for("fs-1") == {"device": "fs-1", "gateway": "gw-a", "kind": "flood_sensor"}
    assert reg.apply_status(GatewayStatus(gateway_id="gw-a", state=GatewayState.ONLINE, ts=NOW))
    assert not reg.apply_status(GatewayStatus(gateway_id="gw-a", state=GatewayState.ONLINE))
    assert reg.apply_status(GatewayStatus(gateway_id="gw-a", state=GatewayState.OFFLINE))
    for seq in (0, 1, 2, 5):
        reg.check_seq("gw-a", seq, (seq,))
    reg.flush()

    again = Registry(sm)  # a restarted worker, or the API in another process
    assert set(again.devices()) == {"wb-1", "fs-1"}
    assert again.tags_for("wb-1") == reg.tags_for("wb-1")
    g = again.gateway("gw-a")
    assert g is not None
    assert (g.state, g.last_seq, g.gaps) == ("offline", 5, 2)
    # a redelivered batch after the restart is a duplicate, not new
    assert again.check_seq("gw-a", 5, (5,)).verdict is SeqVerdict.DUPLICATE


def test_seq_duplicates_gaps_conflicts_and_resets() -> None:
    reg = Registry()

    def feed(seq: int, fp: tuple[object, ...] = ()) -> SeqVerdict:
        return reg.check_seq("gw", seq, fp or (seq,)).verdict

    assert feed(10) is SeqVerdict.NEW
    assert feed(11) is SeqVerdict.NEW
    assert feed(11) is SeqVerdict.DUPLICATE
    assert feed(11, ("other content",)) is SeqVerdict.CONFLICT
    assert feed(15) is SeqVerdict.NEW
    g = reg.gateway("gw")
    assert g is not None and (g.gaps, g.duplicates, g.last_seq) == (3, 1, 15)
    assert feed(13) is SeqVerdict.NEW  # a late batch fills part of the gap
    g = reg.gateway("gw")
    assert g is not None and g.gaps == 2
    assert feed(500_000) is SeqVerdict.NEW
    assert feed(0) is SeqVerdict.ROLLBACK  # going back without a new boot id: refused
    assert feed(500_000 - 4096) is SeqVerdict.ROLLBACK  # beyond any re-send
    assert feed(500_000 - 4095) is SeqVerdict.NEW  # within the window: fills the gap
    # the documented reset: a birth with a new boot id, then the counter restarts once
    reg.apply_status(GatewayStatus(gateway_id="gw", state=GatewayState.ONLINE, boot_id="b1"))
    assert feed(0) is SeqVerdict.RESET
    g = reg.gateway("gw")
    assert g is not None and (g.gaps, g.last_seq) == (0, 0)
    assert feed(1) is SeqVerdict.NEW
    for seq in range(2, 100):
        feed(seq)
    assert feed(1) is SeqVerdict.DUPLICATE  # remembered: same content
    assert feed(1, ("new content",)) is SeqVerdict.CONFLICT
    assert feed(0, ("replayed",)) is SeqVerdict.CONFLICT  # remembered, other content
    for seq in range(100, 5000):
        feed(seq)
    assert feed(0, ("replayed",)) is SeqVerdict.ROLLBACK  # the reset was allowed once only
    # the same boot id again (a reconnect) allows nothing
    reg.apply_status(GatewayStatus(gateway_id="gw", state=GatewayState.ONLINE, boot_id="b1"))
    assert feed(2, ("replayed",)) is SeqVerdict.ROLLBACK


def test_without_a_database_a_grouped_worker_still_judges_gaps_in_memory() -> None:
    reg = Registry()
    assert reg.share_seqs() is False  # nothing to share through
    assert reg.check_seq("gw", 1, (1,)).missing == 0
    assert reg.check_seq("gw", 4, (4,)).missing == 2
    g = reg.gateway("gw")
    assert g is not None and g.gaps == 2


def test_metrics_render_prometheus_text() -> None:
    m = Metrics()
    m.inc("akita_ingest_messages_total", result="stored")
    m.inc("akita_ingest_messages_total", 2, result="stored")
    m.set("akita_ingest_buffer_depth", 42)
    m.observe("akita_ingest_batch_write_seconds", 0.03)
    m.set("akita_custom", 1.5, site='Ka"wa\\bata')
    text = m.render()
    assert 'akita_ingest_messages_total{result="stored"} 3' in text
    assert "# TYPE akita_ingest_batch_write_seconds histogram" in text
    assert 'akita_ingest_batch_write_seconds_bucket{le="0.05"} 1' in text
    assert 'akita_ingest_batch_write_seconds_bucket{le="0.025"} 0' in text
    assert "akita_ingest_buffer_depth 42" in text
    assert "akita_ingest_dead_letters_total 0" in text
    assert 'akita_custom{site="Ka\\"wa\\\\bata"} 1.5' in text
    assert text.endswith("\n")
