"""Real detectors + alert lifecycle: a depth flapping around the 注意 (caution) line
makes one alert, not a storm, and it resolves once the water has stayed low."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud.alerts import AlertChange
from schemas.wire import DeviceInfo
from tests.cloud.api.conftest import make_service
from tests.cloud.api.data import flood_batch, register


def test_flapping_flood_level_makes_one_alert(tmp_path: Path) -> None:
    svc = make_service(tmp_path, alerts={"hold_off_s": 300, "min_open_s": 60})
    try:
        changes: list[AlertChange] = []
        svc.alerts.subscribe(changes.append)
        info = DeviceInfo(device_id="fl-flap", kind="flood_sensor", poll_interval_s=60)  # type: ignore[arg-type]
        register(svc, "gw-flap", info)
        t0 = datetime.now(UTC) - timedelta(hours=3)
        n = 0

        def feed(minute: int, depths: list[float]) -> None:
            nonlocal n
            now = t0 + timedelta(minutes=minute + len(depths))
            batch = flood_batch("gw-flap", n, "fl-flap", t0 + timedelta(minutes=minute), depths)
            svc.handle_batch(batch, now=now)
            svc.tick(now + timedelta(seconds=30))
            n += 1

        def flood() -> list[tuple[str, object]]:
            return [
                (c.action, c.extra.get("stage")) for c in changes if c.alert.kind == "flood_stage"
            ]

        for minute in range(0, 60, 3):  # 12 / 5 cm across the 10 cm 注意 line for an hour
            feed(minute, [12.0, 5.0, 12.0] if minute % 2 == 0 else [5.0, 12.0, 5.0])
        assert flood() == [("open", "caution")]
        for minute in range(60, 72, 3):  # the water goes down and stays down
            feed(minute, [3.0, 3.0, 3.0])
        svc.tick(t0 + timedelta(minutes=85))
        assert flood() == [("open", "caution"), ("resolve", "caution")]
    finally:
        svc.stop()
