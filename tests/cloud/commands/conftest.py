"""A command rig on a real SQLite database: the device registry, the alert lifecycle, the
command service with its rules, and a clock the test moves (no real waits)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.config import AlertConfig
from cloud.alerts.manager import AlertManager
from cloud.commands.component import Commands, build
from cloud.commands.config import CommandSettings
from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.ingest.settings import IngestSettings
from cloud.metrics import Metrics
from cloud.registry import Registry
from schemas.wire import DeviceInfo

T0 = datetime(2026, 7, 14, 3, 0, tzinfo=UTC)  # 12:00 JST

FLOOD_GW, SIGN_GW, CU_GW_A, CU_GW_B = "gw-flood", "gw-sign", "gw-cu-a", "gw-cu-b"
RULES: list[dict[str, Any]] = [
    {
        "id": "araya-lamp",
        "type": "device_action",
        "alert_kind": "flood_stage",
        "source": "fs-araya",
        "min_stage": "warning",
        "target": "plc-araya",
        "action": "lamp",
        "params": {"value": True},
        "off_params": {"value": False},
    },
    {
        "id": "araya-siren",
        "type": "device_action",
        "alert_kind": "flood_stage",
        "source": "fs-araya",
        "min_stage": "danger",
        "target": "plc-araya",
        "action": "siren",
        "params": {"value": True},
        "off_params": {"value": False},
    },
    {
        "id": "heat-notice",
        "type": "area_notice",
        "alert_kind": "heat_wbgt",
        "min_stage": "severe_warning",
        "scope": "area",
        "text": "熱中症に警戒してください。水分をとり、エアコンを使ってください。",
    },
]


def call_unit(device_id: str, area: str, district: str, lat: float, lon: float) -> DeviceInfo:
    return DeviceInfo(
        device_id=device_id,
        kind="call_unit",
        area=area,
        district=district,  # type: ignore[arg-type]
        lat=lat,
        lon=lon,
    )


def provision(registry: Registry) -> None:
    registry.provision(
        FLOOD_GW,
        [
            DeviceInfo(
                device_id="fs-araya",
                kind="flood_sensor",  # type: ignore[arg-type]
                site="新屋アンダーパス",
                area="新屋",
                district="西部",
                lat=39.6958,
                lon=140.0780,
            )
        ],
    )
    # a pump-station PLC stands in for the sign: a Modbus device with writable coils
    registry.provision(
        SIGN_GW,
        [
            DeviceInfo(
                device_id="plc-araya",
                kind="manhole_pump",  # type: ignore[arg-type]
                site="新屋アンダーパス",
                area="新屋",
                district="西部",
            )
        ],
    )
    registry.provision(
        CU_GW_A,
        [
            call_unit("cu-1", "土崎", "北部", 39.757, 140.066),
            call_unit("cu-2", "土崎", "北部", 39.758, 140.067),
            call_unit("cu-3", "新屋", "西部", 39.700, 140.080),
        ],
    )
    registry.provision(
        CU_GW_B,
        [
            call_unit("cu-4", "土崎", "北部", 39.759, 140.068),
            call_unit("cu-5", "中通", "中央", 39.717, 140.118),
        ],
    )


class Clock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


@dataclass
class Rig:
    db: sessionmaker[Session]
    registry: Registry
    alerts: AlertManager
    commands: Commands
    clock: Clock

    @property
    def service(self) -> Any:
        return self.commands.service


def make_rig(
    tmp_path: Path,
    *,
    broker: IngestSettings | None = None,
    rules: list[dict[str, Any]] | None = None,
    db_url: str | None = None,
    **settings: Any,
) -> Rig:
    engine = make_engine(db_url or f"sqlite:///{tmp_path / 'akita.db'}")
    create_all(engine)
    db = make_sessionmaker(engine)
    registry = Registry(db)
    provision(registry)
    clock = Clock()
    alerts = AlertManager(db, AlertConfig(hold_off_s=60, min_open_s=0), clock=clock)
    config = CommandSettings.model_validate(
        {"rules": RULES if rules is None else rules, "retry_s": 30, "hold_s": 600, **settings}
    )
    commands = build(
        db,
        registry,
        config,
        alerts,
        broker=broker or IngestSettings(),
        metrics=Metrics(declare_ingest=False),
        clock=clock,
    )
    return Rig(db, registry, alerts, commands, clock)


@pytest.fixture
def rig(tmp_path: Path, db_url: str) -> Iterator[Rig]:
    """On SQLite, then on PostgreSQL (the ``db_url`` fixture)."""
    r = make_rig(tmp_path, db_url=db_url)
    yield r
    r.commands.stop()
