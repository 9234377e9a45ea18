"""The command side as one component of the cloud service: the command service, the
automatic-action rules listening to the alert lifecycle, the residents' "seen" presses
from the batch stream, and the notify channel that sends notices."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.manager import AlertManager
from cloud.commands.config import CommandSettings
from cloud.commands.edge_rules import edge_flood_rules
from cloud.commands.kpi_points import KpiPoints
from cloud.commands.notices import NoticeKind, Targets, record_seen, send_notice
from cloud.commands.rule_push import RulePusher
from cloud.commands.rules import RuleEngine
from cloud.commands.service import CommandError, CommandService
from cloud.detect.config import DetectConfig
from cloud.errors import SettingsError
from cloud.ingest.settings import IngestSettings
from cloud.metrics import Metrics
from cloud.notify.errors import NotifyError
from cloud.notify.notice import NoticeChannel
from cloud.registry import Registry
from cloud.store.base import TimeSeriesStore
from schemas.wire import Batch

log = logging.getLogger(__name__)

NOTIFY_ISSUER = "rule:notify"  # notices sent by the notify routes (an automatic action)


@dataclass
class Commands:
    service: CommandService
    rules: RuleEngine
    pusher: RulePusher | None = None  # the signs' local flood rules (only where it publishes)
    kpi: KpiPoints | None = None  # the KPI facts for the dashboard (where there is a store)

    def observe_batch(self, batch: Batch) -> None:
        """The service's batch stream: keep the residents' notice_seen presses. Never
        raises into the ingest: a failure is logged and counted."""
        try:
            record_seen(self.service, batch, self.kpi.on_seen if self.kpi else None)
        except SQLAlchemyError as exc:
            self.service.metrics.inc("akita_command_failures_total", where="notice_seen")
            log.error("notice_seen_not_recorded gateway=%s reason=%s", batch.gateway_id, exc)

    def notice_channel(self) -> NoticeChannel:
        return NoticeChannel(self._send_notice)

    def _send_notice(self, address: str, text: str, kind: str) -> None:
        if self.rules.kill_switch_engaged():
            raise NotifyError("kill switch engaged: no automatic notices", retryable=False)
        scope, _, value = address.partition(":")
        targets = Targets(
            all=address == "all",
            devices=[value] if scope == "device" else [],
            districts=[value] if scope == "district" else [],
            areas=[value] if scope == "area" else [],
        )
        # a call unit shows heatstroke and disaster notices (the city's two kinds); any
        # other alert routed to it (flooding, an all-clear) is a disaster notice
        notice_kind: NoticeKind = "heat" if kind == "heat" else "disaster"
        try:
            send_notice(
                self.service, kind=notice_kind, text=text, targets=targets, issuer=NOTIFY_ISSUER
            )
        except CommandError as exc:
            raise NotifyError(str(exc), retryable=False) from exc
        except SQLAlchemyError as exc:
            raise NotifyError(f"command store unavailable: {type(exc).__name__}") from exc

    def start(self) -> None:
        self.service.start()
        if self.pusher is not None and self.service.settings.enabled:
            self.pusher.start()

    def stop(self) -> None:
        self.rules.close()
        if self.pusher is not None:
            self.pusher.close()
        self.service.stop()

    def status(self) -> dict[str, Any]:
        """For ``GET /automation`` and ``/commands/status``: is anything wrong, and what."""
        failure = self.rules.last_failure
        return {
            "enabled": self.service.settings.enabled,
            "broker_connected": self.service.connected,
            "kill_switch": self.rules.kill_switch_engaged(),
            "last_rule_failure": None
            if failure is None
            else {
                "at": failure.at.isoformat(),
                "rule": failure.rule_id,
                "alert": failure.alert_id,
                "reason": failure.reason,
            },
        }


def build(
    sessionmaker: sessionmaker[Session],
    registry: Registry,
    settings: CommandSettings,
    alerts: AlertManager,
    *,
    broker: IngestSettings,
    metrics: Metrics,
    clock: Callable[[], datetime],
    detect: DetectConfig | None = None,
    store: TimeSeriesStore | None = None,
) -> Commands:
    """The component, its rules listening to ``alerts`` (queue only: alerts never wait),
    and the push of the signs' local flood rules (their depths from ``detect``)."""
    service = CommandService(
        sessionmaker, registry, settings, broker=broker, metrics=metrics, clock=clock
    )
    rules = RuleEngine(service)
    alerts.subscribe(rules.on_change)
    detect = detect or DetectConfig()
    try:
        local = edge_flood_rules(settings, detect.flood, detect.sites)
    except ValueError as exc:
        raise SettingsError(f"setting commands.rules: {exc}") from exc
    kpi = None
    if store is not None:  # the dashboard's copy of the KPI (cloud/commands/kpi_points.py)
        kpi = KpiPoints(store, sessionmaker, registry, settings.timezone, metrics)
        service.result_listeners.append(kpi.on_result)
    return Commands(service, rules, RulePusher(service, local) if local else None, kpi)
