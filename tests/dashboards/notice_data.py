"""Notices to call units for the Call units dashboard's KPI panels, produced by the
cloud's own code path: the command component built with the store (as
``CloudService`` builds it) sends two notices, the gateways' results are applied by
``CommandService.handle_result`` and the residents' presses go through
``Commands.observe_batch``; the KPI points are whatever that path writes.

Two notices over the call units of the fleet: A (heat) to all of them, one unit's
result ``failed``; B (info) to the first half, all ``done``. Presses: the first unit
presses A twice (counted once), the second presses A and B, the last presses B, which
was never sent to it (refused).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.manager import AlertManager
from cloud.commands.component import Commands, build
from cloud.commands.config import CommandSettings
from cloud.commands.notices import Kpi, NoticeRecord, Targets, kpi, send_notice
from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.ingest.settings import IngestSettings
from cloud.metrics import Metrics
from cloud.registry import Registry
from schemas.commands import CommandResult, CommandState
from schemas.wire import Batch, DeviceInfo
from tests.dashboards.scenario_data import Loader


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def _registry(source: Registry, db_path: Path) -> tuple[Registry, sessionmaker[Session]]:
    """A registry of its own with ``source``'s call units under their gateways."""
    engine = make_engine(f"sqlite:///{db_path}")
    create_all(engine)
    sm = make_sessionmaker(engine)
    registry = Registry(sm)
    by_gateway: dict[str, list[DeviceInfo]] = {}
    for d in source.devices().values():
        gateway = source.gateway_of(d.device_id)
        if d.kind.value == "call_unit" and gateway is not None:
            by_gateway.setdefault(gateway, []).append(d)
    for gateway, devices in sorted(by_gateway.items()):
        registry.provision(gateway, devices)
    return registry, sm


def _results(c: Commands, notice: NoticeRecord, at: datetime, failed: set[str]) -> None:
    for command_id in notice.command_ids:
        cmd = c.service.get(command_id)
        state = CommandState.FAILED if cmd.device_id in failed else CommandState.DONE
        result = CommandResult(
            id=UUID(command_id),
            gateway_id=cmd.gateway_id,
            device_id=cmd.device_id,
            state=state,
            ts=at,
        )
        assert c.service.handle_result(cmd.gateway_id, result) is not None


def _presses(c: Commands, presses: list[tuple[str, str, datetime]]) -> None:
    for i, (device, notice_id, at) in enumerate(presses):
        gateway = c.service.registry.gateway_of(device)
        reading = {"device_id": device, "kind": "call_unit", "ts": at.isoformat(),
                   "values": {"event": "notice_seen", "notice_id": notice_id}}  # fmt: skip
        batch = {"gateway_id": gateway, "seq": i + 1, "sent_at": at.isoformat(),
                 "readings": [reading]}  # fmt: skip
        c.observe_batch(Batch.model_validate(batch))


def load_notices(loader: Loader, start: datetime, end: datetime, db_path: Path) -> Kpi:
    """The two notices within [start, end]; returns what GET /notices/kpi reports."""
    registry, sm = _registry(loader.registry, db_path)
    units = sorted(registry.devices())
    assert len(units) >= 3, units
    clock = Clock(start + (end - start) / 4)
    c = build(sm, registry, CommandSettings(enabled=False), AlertManager(sm),
              broker=IngestSettings(), metrics=Metrics(declare_ingest=False),
              clock=clock.now, store=loader.store)  # fmt: skip
    try:
        a = send_notice(c.service, kind="heat", text="熱中症に注意", targets=Targets(all=True),
                        issuer="token:test")  # fmt: skip
        _results(c, a, clock.at + timedelta(minutes=2), failed={units[-1]})
        clock.at = start + (end - start) / 2
        half = units[: len(units) // 2 + 1]
        b = send_notice(c.service, kind="disaster", text="お知らせ", targets=Targets(devices=half),
                        issuer="token:test")  # fmt: skip
        _results(c, b, clock.at + timedelta(minutes=2), failed=set())
        t = clock.at + timedelta(minutes=5)
        _presses(c, [(units[0], a.id, t), (units[0], a.id, t + timedelta(minutes=1)),
                     (units[1], a.id, t), (units[1], b.id, t), (units[-1], b.id, t)])  # fmt: skip
        return kpi(c.service)
    finally:
        c.stop()
