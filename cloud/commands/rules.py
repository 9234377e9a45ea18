"""Automatic actions: alert changes -> commands, by the rules in ``[commands]``.

- ``device_action``: an alert of ``alert_kind`` (at ``source``, or anywhere) reaching
  ``min_stage`` -> ``action`` with ``params`` on ``target``, once per alert; the alert's
  resolution -> ``off_params`` (sent whatever stage it ended at: switching off what is
  off costs nothing, a lamp left on by a lost state is worse).
- ``area_notice``: an alert reaching ``min_stage`` at a device -> a notice to every call
  unit in the device's ``area`` (or ``district``), at most one per unit per day.

Rules never fight a human: a device held by a staff command is left alone until the hold
ends. A disarmed rule, or the kill switch, stops the rule before it issues anything.
Every firing and every holding-back is in the audit trail (``command_audit``).

Fail-safe: the alert lifecycle only *queues* a change here (:meth:`RuleEngine.on_change`
never raises and never blocks), so alerts and their messages go out whatever happens to
the commands. A rule that cannot issue its command logs ``command_rule_failed`` at ERROR,
counts ``akita_command_failures_total{where="rule"}`` and shows the failure in
``GET /automation`` until a later rule succeeds.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select

from cloud.commands.config import AreaNoticeRule, DeviceActionRule
from cloud.commands.notices import Targets, choose, send_notice
from cloud.commands.service import CommandService
from cloud.db.commands import CommandRow, RuleSwitchRow
from schemas.alert import Alert

log = logging.getLogger(__name__)

KILL_SWITCH = "*"  # the switch row that disarms every rule


class ChangeLike(Protocol):
    """What the rules read from :class:`cloud.alerts.manager.AlertChange`."""

    @property
    def alert(self) -> Alert: ...
    @property
    def action(self) -> str: ...
    @property
    def at(self) -> datetime: ...


@dataclass(frozen=True)
class RuleState:
    rule_id: str
    type: str
    armed: bool
    changed_by: str | None
    changed_at: datetime | None


@dataclass(frozen=True)
class Failure:
    at: datetime
    rule_id: str
    alert_id: str
    reason: str


class RuleEngine:
    """Runs the rules on its own thread; :meth:`flush` waits for what is queued."""

    def __init__(self, service: CommandService) -> None:
        self.service = service
        self.rules = list(service.settings.rules)
        self.last_failure: Failure | None = None
        self._fired: set[tuple[str, str]] = set()  # (rule id, alert id): "on" sent
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="akita-rules", daemon=True)
        self._thread.start()

    # -- the alert listener -------------------------------------------------------------

    def on_change(self, change: ChangeLike) -> None:
        """AlertManager listener: queues only, never raises."""
        if not any(r.alert_kind == change.alert.kind for r in self.rules):
            return
        with self._idle:
            self._pending += 1
        self._inbox.put(change)

    def flush(self, timeout: float = 30.0) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._inbox.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while (change := self._inbox.get()) is not None:
            try:
                for rule in self.rules:
                    if rule.alert_kind == change.alert.kind:
                        self._run(rule, change)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _run(self, rule: DeviceActionRule | AreaNoticeRule, change: ChangeLike) -> None:
        try:
            if isinstance(rule, DeviceActionRule):
                self._device_action(rule, change)
            else:
                self._area_notice(rule, change)
        except Exception as exc:  # fail safe: say so loudly; alerts are not affected
            self.last_failure = Failure(self.service.clock(), rule.id, change.alert.id, str(exc))
            self.service.metrics.inc("akita_command_failures_total", where="rule")
            log.error(
                "command_rule_failed rule=%s alert=%s reason=%s: %s",
                rule.id,
                change.alert.id,
                type(exc).__name__,
                exc,
            )

    # -- the two kinds of rule ------------------------------------------------------------

    def _device_action(self, rule: DeviceActionRule, change: ChangeLike) -> None:
        alert = change.alert
        if rule.source is not None and alert.device_id != rule.source:
            return
        key = (rule.id, alert.id)
        if change.action in ("open", "update"):
            stage = (getattr(change, "extra", None) or {}).get("stage")
            if not rule.reached(stage) or key in self._fired:
                return
            if self._fire(rule, alert, rule.target, rule.params, f"stage {stage}"):
                self._fired.add(key)
        elif change.action == "resolve" and rule.off_params is not None:
            self._fired.discard(key)
            self._fire(rule, alert, rule.target, rule.off_params, "alert resolved")

    def _fire(
        self,
        rule: DeviceActionRule,
        alert: Alert,
        target: str,
        params: dict[str, Any],
        why: str,
    ) -> bool:
        if not self._may_run(rule, alert, why):
            return False
        hold = self.service.held(target)
        if hold is not None:
            note = f"alert {alert.id} {why}: {target} held by {hold.held_by} until "
            self.service.audit(
                f"rule:{rule.id}", "rule_held_back", target, note + hold.held_until.isoformat()
            )
            log.info(
                "command_rule_held_back rule=%s device=%s by=%s", rule.id, target, hold.held_by
            )
            return False
        record = self.service.issue(
            target,
            rule.action,
            params,
            issuer=f"rule:{rule.id}",
            priority=rule.priority,
            ttl_s=rule.ttl_s,
            rule_id=rule.id,
        )
        self.service.audit(
            f"rule:{rule.id}", "rule_fired", target, f"alert {alert.id} {why}: command {record.id}"
        )
        return True

    def _area_notice(self, rule: AreaNoticeRule, change: ChangeLike) -> None:
        alert = change.alert
        stage = (getattr(change, "extra", None) or {}).get("stage")
        if change.action not in ("open", "update") or not rule.reached(stage):
            return
        info = self.service.registry.device(alert.device_id) if alert.device_id else None
        place = getattr(info, rule.scope, None) if info is not None else None
        if not place:
            self.service.audit(
                f"rule:{rule.id}",
                "rule_skipped",
                alert.device_id,
                f"alert {alert.id}: the device has no {rule.scope}",
            )
            return
        if not self._may_run(rule, alert, f"stage {stage}"):
            return
        scope = Targets(areas=[place]) if rule.scope == "area" else Targets(districts=[place])
        units = choose(self.service, scope)
        now = self.service.clock()
        told = self._told_today(rule, units, now)
        free = [u for u in units if u not in told and self.service.held(u, now) is None]
        if not free:
            self.service.audit(
                f"rule:{rule.id}",
                "rule_skipped",
                place,
                f"alert {alert.id}: every unit already told today or held",
            )
            return
        notice = send_notice(
            self.service,
            kind=rule.notice_kind,
            text=rule.text,
            targets=scope,
            issuer=f"rule:{rule.id}",
            level=str(stage),
            ttl_s=rule.ttl_s,
            rule_id=rule.id,
            only=free,
        )
        self.service.audit(
            f"rule:{rule.id}",
            "rule_fired",
            place,
            f"alert {alert.id} stage {stage}: notice {notice.id} to "
            f"{notice.targeted} units ({len(units) - len(free)} skipped)",
        )

    def _told_today(self, rule: AreaNoticeRule, units: list[str], now: datetime) -> set[str]:
        zone = ZoneInfo(self.service.settings.timezone)
        local = now.astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        with self.service.sessionmaker() as s:
            stmt = select(CommandRow.device_id).where(
                CommandRow.rule_id == rule.id,
                CommandRow.issued_at >= midnight,
                CommandRow.issued_at < midnight + timedelta(days=1),
            )
            return set(s.scalars(stmt)) & set(units)

    # -- switches ---------------------------------------------------------------------

    def _may_run(self, rule: DeviceActionRule | AreaNoticeRule, alert: Alert, why: str) -> bool:
        if self.kill_switch_engaged():
            reason = "kill switch engaged"
        elif not self.armed(rule.id):
            reason = "rule disarmed"
        else:
            return True
        self.service.audit(
            f"rule:{rule.id}", "rule_skipped", alert.device_id, f"alert {alert.id} {why}: {reason}"
        )
        log.info("command_rule_skipped rule=%s alert=%s reason=%s", rule.id, alert.id, reason)
        return False

    def _switch(self, rule_id: str) -> RuleSwitchRow | None:
        with self.service.sessionmaker() as s:
            return s.get(RuleSwitchRow, rule_id)

    def armed(self, rule_id: str) -> bool:
        row = self._switch(rule_id)
        if row is not None:
            return row.armed
        rule = self.service.settings.rule(rule_id)
        return rule is not None and rule.armed

    def kill_switch_engaged(self) -> bool:
        row = self._switch(KILL_SWITCH)
        return row is not None and not row.armed

    def set_armed(self, rule_id: str, armed: bool, actor: str, reason: str | None = None) -> None:
        """Arm or disarm one rule (``*``: the kill switch; armed False = engaged)."""
        now = self.service.clock()
        with self.service.sessionmaker() as s, s.begin():
            row = s.get(RuleSwitchRow, rule_id)
            if row is None:
                row = RuleSwitchRow(rule_id=rule_id)
                s.add(row)
            row.armed, row.changed_by, row.changed_at, row.reason = armed, actor, now, reason
        if rule_id == KILL_SWITCH:
            action = "kill_switch_off" if armed else "kill_switch_on"
        else:
            action = "rule_armed" if armed else "rule_disarmed"
        self.service.audit(actor, action, rule_id, reason)
        log.warning("command_%s rule=%s actor=%s", action, rule_id, actor)

    def states(self) -> list[RuleState]:
        out = []
        for rule in self.rules:
            row = self._switch(rule.id)
            out.append(
                RuleState(
                    rule.id,
                    rule.type,
                    self.armed(rule.id),
                    row.changed_by if row else None,
                    row.changed_at if row else None,
                )
            )
        return out
