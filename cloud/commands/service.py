"""``CommandService``: commands to devices, tracked to a final state, every change audited.

- :meth:`issue` addresses a command to the gateway that owns the device *in the
  registry* and stores it ``queued`` (with an ``issue`` event naming the issuer).
- :meth:`deliver` publishes what waits for gateways that are online (the gateway state
  of the registry, kept current by the births and Last Wills this service receives on
  its own connection), re-publishing with the same id every ``retry_s`` until a result
  arrives; a gateway's birth re-publishes its waiting commands at once. A command past
  ``expires_at`` is never published: :meth:`tick` marks it ``expired`` with the reason.
- :meth:`handle_result` accepts a result only from the gateway the command was sent to
  and only for the command's device; anything else is refused, logged, counted and put in
  the audit trail.
- A staff command (issuer not ``rule:``) holds its device for ``hold_s``: the automatic
  actions (:mod:`cloud.commands.rules`) leave it alone meanwhile.

The relational tables (:mod:`cloud.db.commands`) are the audit trail: ``commands`` has the
current state, ``command_events`` every change with who, when, why and the read-back.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.commands import states
from cloud.commands.config import CommandSettings
from cloud.commands.records import CommandEvent, CommandRecord, event_of, record_of
from cloud.commands.states import CloudState, TransitionError
from cloud.db.commands import CommandAuditRow, CommandEventRow, CommandRow, DeviceHoldRow
from cloud.errors import CloudError
from cloud.ingest.settings import IngestSettings
from cloud.metrics import Metrics
from cloud.registry import Registry
from schemas.codec import decode_model, encode_model
from schemas.commands import Command, CommandPriority, CommandResult
from schemas.errors import WireError
from schemas.wire import GatewayStatus

log = logging.getLogger(__name__)

CLOUD = "cloud"
_PRIORITY_ORDER = {p.value: i for i, p in enumerate(CommandPriority)}


class CommandError(CloudError):
    """A command cannot be issued; ``field`` and ``value`` name the bad input."""

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field, self.value = field, value


class CommandNotFound(CloudError):
    """No command with that id."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def is_staff(issuer: str) -> bool:
    return not issuer.startswith("rule:")


@dataclass(frozen=True)
class Issue:
    """One command to make: what :meth:`CommandService.issue_many` takes."""

    device_id: str
    action: str
    params: dict[str, Any]
    issuer: str
    priority: CommandPriority = CommandPriority.NORMAL
    ttl_s: float | None = None
    notice_id: str | None = None
    rule_id: str | None = None


class CommandService:
    """See the module docstring. Thread-safe: API requests, the rules' worker, the tick
    thread and the MQTT network thread call it concurrently."""

    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        registry: Registry,
        settings: CommandSettings | None = None,
        *,
        broker: IngestSettings | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.registry = registry
        self.settings = settings or CommandSettings()
        self._broker = broker or IngestSettings()
        self.metrics = metrics or Metrics(declare_ingest=False)
        self._declare_metrics()
        self.clock = clock
        self._lock = threading.RLock()
        self._online: dict[str, bool] = {}  # from births / Last Wills on our connection
        self._births: dict[str, datetime] = {}  # each gateway's session (its birth's ts)
        self._link: Any | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.result_listeners: list[Callable[[CommandRecord], None]] = []
        # (gateway, online) for every status: the local-rule push acts on births
        self.status_listeners: list[Callable[[str, bool], None]] = []

    def _declare_metrics(self) -> None:
        m = self.metrics
        m.counter("akita_commands_issued_total", "Commands issued, by issuer kind (staff/rule)")
        m.counter("akita_commands_published_total", "Command publications (retries included)")
        m.counter("akita_commands_final_total", "Commands reaching a final state, by state")
        m.counter("akita_command_results_refused_total", "Results refused, by reason")
        m.counter("akita_command_failures_total", "Commands that could not be issued, by where")
        m.gauge("akita_commands_broker_up", "1 while the command service is connected")
        m.gauge("akita_commands_waiting", "Commands queued or sent, not yet accepted")

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Connect (own MQTT client) and start the tick thread. Without ``enabled``
        nothing is published: commands wait, and :meth:`status` says so."""
        if not self.settings.enabled:
            log.warning("commands_disabled reason=commands.enabled is false; nothing is sent")
            return
        from cloud.commands.link import CommandLink

        self._link = CommandLink(
            self._broker,
            self.settings,
            on_result=self.handle_result_payload,
            on_status=self.handle_status_payload,
            on_connect=self._on_connected,
        )
        self._link.start()
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="akita-commands", daemon=True)
        self._ticker.start()

    def _on_connected(self) -> None:
        self.deliver()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
            self._ticker = None
        if self._link is not None:
            self._link.stop()
            self._link = None

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.settings.tick_s):
            try:
                self.tick()
            except Exception:  # keep ticking; the next tick retries
                self.metrics.inc("akita_command_failures_total", where="tick")
                log.exception("commands_tick_failed")

    @property
    def connected(self) -> bool:
        return self._link is not None and bool(self._link.connected)

    def wait_connected(self, timeout: float) -> bool:
        return self._link is not None and bool(self._link.wait_connected(timeout))

    # -- issuing -----------------------------------------------------------------------

    def issue(
        self,
        device_id: str,
        action: str,
        params: dict[str, Any] | None = None,
        *,
        issuer: str,
        priority: CommandPriority = CommandPriority.NORMAL,
        ttl_s: float | None = None,
        notice_id: str | None = None,
        rule_id: str | None = None,
    ) -> CommandRecord:
        """Store one command ``queued`` and publish it if its gateway is online."""
        one = Issue(
            device_id, action, dict(params or {}), issuer, priority, ttl_s, notice_id, rule_id
        )
        [record] = self.issue_many([one])
        return record

    def issue_many(self, issues: Iterable[Issue]) -> list[CommandRecord]:
        """Store several commands in one transaction (a notice's fan-out), then publish."""
        now = self.clock()
        rows: list[CommandRow] = []
        gateways: set[str] = set()
        with self._lock, self.sessionmaker() as s, s.begin():
            for one in issues:
                row = self._new_row(one, now)
                s.add(row)
                s.flush()
                self._event(s, row, now, one.issuer, "issue", None, reason=one.rule_id)
                if is_staff(one.issuer):
                    self._hold(s, row, now)
                rows.append(row)
                gateways.add(row.gateway_id)
        for row in rows:
            kind = "staff" if is_staff(row.issuer) else "rule"
            self.metrics.inc("akita_commands_issued_total", issuer=kind)
            log.info(
                "command_issued id=%s device=%s gateway=%s action=%s issuer=%s expires_at=%s",
                row.id,
                row.device_id,
                row.gateway_id,
                row.action,
                row.issuer,
                row.expires_at.isoformat(),
            )
        for gateway_id in sorted(gateways):
            self.deliver(gateway_id)
        return [self.get(row.id) for row in rows]

    def _new_row(self, one: Issue, now: datetime) -> CommandRow:
        gateway_id = self.registry.gateway_of(one.device_id)
        if self.registry.device(one.device_id) is None:
            raise CommandError(
                f"device_id: {one.device_id!r} is not in the device registry",
                field="device_id",
                value=one.device_id,
            )
        if gateway_id is None:
            raise CommandError(
                f"device_id: {one.device_id!r} has no owning gateway in the registry",
                field="device_id",
                value=one.device_id,
            )
        ttl = one.ttl_s if one.ttl_s is not None else self.settings.default_ttl_s
        expires = now + timedelta(seconds=ttl)
        command_id = str(uuid.uuid4())
        try:  # the wire contract's own checks (action, params, lifetime) before storing
            Command(
                id=uuid.UUID(command_id),
                gateway_id=gateway_id,
                device_id=one.device_id,
                action=one.action,
                params=one.params,
                issued_at=now,
                expires_at=expires,
                priority=one.priority,
                issuer=one.issuer,
            )
        except ValueError as exc:
            raise CommandError(f"command refused by the contract: {exc}") from exc
        return CommandRow(
            id=command_id,
            gateway_id=gateway_id,
            device_id=one.device_id,
            action=one.action,
            params=dict(one.params),
            priority=one.priority.value,
            issuer=one.issuer,
            issued_at=now,
            expires_at=expires,
            state=CloudState.QUEUED.value,
            attempts=0,
            updated_at=now,
            notice_id=one.notice_id,
            rule_id=one.rule_id,
        )

    def _hold(self, s: Session, row: CommandRow, now: datetime) -> None:
        if self.settings.hold_s <= 0:
            return
        hold = s.get(DeviceHoldRow, row.device_id)
        until = now + timedelta(seconds=self.settings.hold_s)
        if hold is None:
            s.add(
                DeviceHoldRow(
                    device_id=row.device_id, held_until=until, held_by=row.issuer, command_id=row.id
                )
            )
        else:
            hold.held_until, hold.held_by, hold.command_id = until, row.issuer, row.id

    def held(self, device_id: str, now: datetime | None = None) -> DeviceHoldRow | None:
        """The staff hold on a device, if one is in force."""
        now = now or self.clock()
        with self.sessionmaker() as s:
            hold = s.get(DeviceHoldRow, device_id)
            return hold if hold is not None and hold.held_until > now else None

    # -- delivery ----------------------------------------------------------------------

    def online(self, gateway_id: str) -> bool:
        seen = self._online.get(gateway_id)
        if seen is not None:
            return seen
        info = self.registry.gateway(gateway_id)
        return info is not None and info.state == "online"

    def deliver(self, gateway_id: str | None = None, *, force: bool = False) -> int:
        """Publish the commands waiting for ``gateway_id`` (None: every gateway) that is
        online: queued ones, and sent ones whose retry is due (``force``: all of them, as
        after a birth). Expired ones are expired instead. Returns how many were published."""
        if self._link is None or not self.connected:
            return 0
        now = self.clock()
        retry_before = now - timedelta(seconds=self.settings.retry_s)
        published = 0
        with self._lock, self.sessionmaker() as s, s.begin():
            stmt = select(CommandRow).where(
                CommandRow.state.in_([st.value for st in states.UNDELIVERED])
            )
            if gateway_id is not None:
                stmt = stmt.where(CommandRow.gateway_id == gateway_id)
            rows = sorted(s.scalars(stmt), key=lambda r: (_PRIORITY_ORDER[r.priority], r.issued_at))
            for row in rows:
                if row.expires_at <= now:
                    self._expire(s, row, now)
                    continue
                if not self.online(row.gateway_id):
                    continue
                due = row.last_sent_at is None or row.last_sent_at <= retry_before
                if row.state == CloudState.SENT.value and not (force or due):
                    continue
                if self._publish(s, row, now):
                    published += 1
        self._update_waiting()
        return published

    def _publish(self, s: Session, row: CommandRow, now: datetime) -> bool:
        assert self._link is not None
        command = Command(
            id=uuid.UUID(row.id),
            gateway_id=row.gateway_id,
            device_id=row.device_id,
            action=row.action,
            params=row.params or {},
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            priority=CommandPriority(row.priority),
            issuer=row.issuer,
        )
        if not self._link.publish(row.gateway_id, encode_model(command)):
            log.warning("command_publish_failed id=%s gateway=%s", row.id, row.gateway_id)
            return False
        previous = row.state
        row.state = states.after_publish(CloudState(row.state)).value
        row.attempts += 1
        row.last_sent_at = row.updated_at = now
        self._event(s, row, now, CLOUD, "publish", previous, reason=f"attempt {row.attempts}")
        self.metrics.inc("akita_commands_published_total")
        log.info(
            "command_published id=%s gateway=%s device=%s attempt=%d",
            row.id,
            row.gateway_id,
            row.device_id,
            row.attempts,
        )
        return True

    def tick(self, now: datetime | None = None) -> None:
        """Expire what passed ``expires_at`` without a final state; re-publish what is due."""
        now = now or self.clock()
        with self._lock, self.sessionmaker() as s, s.begin():
            stmt = select(CommandRow).where(
                CommandRow.state.in_([st.value for st in CloudState if st not in states.FINAL]),
                CommandRow.expires_at <= now,
            )
            for row in s.scalars(stmt):
                self._expire(s, row, now)
        self.metrics.set("akita_commands_broker_up", 1.0 if self.connected else 0.0)
        self.deliver()
        self._update_waiting()

    def _expire(self, s: Session, row: CommandRow, now: datetime) -> None:
        previous = row.state
        row.state = states.after_expiry(CloudState(row.state)).value
        never = previous == CloudState.QUEUED.value
        row.reason = (
            "expired in the cloud before it could be sent (gateway offline)"
            if never
            else f"expired in the cloud: no final result from the gateway by expires_at "
            f"(last state {previous})"
        )
        row.updated_at = row.final_at = now
        row.final_source = CLOUD
        self._event(s, row, now, CLOUD, "expire", previous, reason=row.reason)
        self.metrics.inc("akita_commands_final_total", state=row.state)
        log.warning(
            "command_expired id=%s gateway=%s device=%s previous=%s",
            row.id,
            row.gateway_id,
            row.device_id,
            previous,
        )

    def _update_waiting(self) -> None:
        with self.sessionmaker() as s:
            waiting = (
                s.query(CommandRow)
                .filter(CommandRow.state.in_([st.value for st in states.UNDELIVERED]))
                .count()
            )
        self.metrics.set("akita_commands_waiting", float(waiting))

    # -- from the gateways -------------------------------------------------------------

    def handle_status_payload(self, gateway_id: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained status
        try:
            status = decode_model(GatewayStatus, payload)
        except WireError as exc:
            log.warning("commands_status_refused gateway=%s reason=%s", gateway_id, exc)
            return
        if status.gateway_id != gateway_id:
            return
        online = status.state.value == "online"
        was = self.online(gateway_id)
        # a birth with a new connect time is a new session even when no offline was seen
        # (a Last Will lost with a broker restart without persistence): what was sent to
        # the old session may never have arrived. The same retained birth read again
        # (our own reconnect) is not.
        new_session = online and (
            not was or (status.ts is not None and status.ts != self._births.get(gateway_id))
        )
        if online and status.ts is not None:
            self._births[gateway_id] = status.ts
        self._online[gateway_id] = online
        for listener in self.status_listeners:
            listener(gateway_id, online)  # queue only (cloud/commands/rule_push.py)
        if new_session:
            log.info("commands_gateway_back gateway=%s", gateway_id)
            self.deliver(gateway_id, force=True)  # the same ids, at once (run at most once)

    def handle_result_payload(self, gateway_id: str, payload: bytes) -> None:
        try:
            result = decode_model(CommandResult, payload)
        except WireError as exc:
            self._refuse(gateway_id, None, "malformed", str(exc))
            return
        self.handle_result(gateway_id, result)

    def handle_result(self, gateway_id: str, result: CommandResult) -> CommandRecord | None:
        """Apply a result that arrived on ``gateway_id``'s topic; None when refused."""
        now = self.clock()
        command_id = str(result.id)
        if result.gateway_id != gateway_id:
            detail = f"payload names gateway {result.gateway_id!r}"
            self._refuse(gateway_id, command_id, "topic_mismatch", detail)
            return None
        with self._lock, self.sessionmaker() as s, s.begin():
            row = s.get(CommandRow, command_id)
            if row is None:
                reason = "unknown_command"
            elif row.gateway_id != gateway_id:
                reason = "not_owner"
            elif row.device_id != result.device_id:
                reason = "device_mismatch"
            else:
                reason = None
            if row is not None and reason is None:
                return self._apply_result(s, row, result, gateway_id, now)
            if row is not None:  # the command's own trail shows the attempt too
                self._event(
                    s, row, now, f"gateway:{gateway_id}", "result_refused", row.state, reason=reason
                )
        self._refuse(gateway_id, command_id, reason or "unknown_command", None)
        return None

    def _apply_result(
        self, s: Session, row: CommandRow, result: CommandResult, gateway_id: str, now: datetime
    ) -> CommandRecord | None:
        previous = row.state
        try:
            new = states.after_result(
                CloudState(row.state), result.state, cloud_final=row.final_source == CLOUD
            )
        except TransitionError as exc:
            log.info("command_result_ignored id=%s state=%s reason=%s", row.id, result.state, exc)
            return None
        readback = dict(result.readback) if result.readback else None
        row.state, row.updated_at = new.value, now
        row.reason = result.reason
        if readback is not None:
            row.readback = readback
        if new in states.FINAL:
            row.final_at, row.final_source = result.ts, "gateway"
            self.metrics.inc("akita_commands_final_total", state=new.value)
        self._event(
            s,
            row,
            now,
            f"gateway:{gateway_id}",
            "result",
            previous,
            reason=result.reason,
            readback=readback,
        )
        log.info(
            "command_result id=%s gateway=%s device=%s state=%s previous=%s",
            row.id,
            gateway_id,
            row.device_id,
            new.value,
            previous,
        )
        record = record_of(row)
        for listener in self.result_listeners:
            try:
                listener(record)
            except Exception:  # a listener (notice summary) must not lose the result
                log.exception("command_listener_failed id=%s", row.id)
        return record

    def _refuse(
        self, gateway_id: str, command_id: str | None, reason: str, detail: str | None
    ) -> None:
        self.metrics.inc("akita_command_results_refused_total", reason=reason)
        log.warning(
            "command_result_refused gateway=%s command=%s reason=%s%s",
            gateway_id,
            command_id,
            reason,
            f" detail={detail}" if detail else "",
        )
        self.audit(
            f"gateway:{gateway_id}",
            "result_refused",
            command_id,
            f"{reason}{': ' + detail if detail else ''}",
        )

    # -- staff -------------------------------------------------------------------------

    def cancel(self, command_id: str, actor: str, note: str | None = None) -> CommandRecord:
        """Cancel a command still queued in the cloud (never published); anything else
        raises :class:`TransitionError` (see docs/commands.md, cancel semantics)."""
        now = self.clock()
        with self._lock, self.sessionmaker() as s, s.begin():
            row = s.get(CommandRow, command_id)
            if row is None:
                raise CommandNotFound(f"command {command_id!r} not found")
            previous = row.state
            row.state = states.after_cancel(CloudState(row.state)).value
            row.reason = f"cancelled by {actor}" + (f": {note}" if note else "")
            row.updated_at = row.final_at = now
            row.final_source = "staff"
            self._event(s, row, now, actor, "cancel", previous, reason=note)
            hold = s.get(DeviceHoldRow, row.device_id)
            if hold is not None and hold.command_id == row.id:
                s.delete(hold)  # a cancelled command holds nothing
        self.metrics.inc("akita_commands_final_total", state=CloudState.CANCELLED.value)
        log.info("command_cancelled id=%s actor=%s", command_id, actor)
        return self.get(command_id)

    # -- audit -------------------------------------------------------------------------

    @staticmethod
    def _event(
        s: Session,
        row: CommandRow,
        at: datetime,
        actor: str,
        action: str,
        from_state: str | None,
        *,
        reason: str | None = None,
        readback: dict[str, Any] | None = None,
    ) -> None:
        s.add(
            CommandEventRow(
                command_id=row.id,
                at=at,
                actor=actor[:80],
                action=action,
                from_state=from_state,
                to_state=row.state,
                reason=(reason or None) and reason[:500],
                readback=readback,
            )
        )

    def audit(self, actor: str, action: str, target: str | None, note: str | None) -> None:
        """One audit row for what is not a single command's state change."""
        with self.sessionmaker() as s, s.begin():
            row = CommandAuditRow(at=self.clock(), actor=actor[:80], action=action[:32])
            row.target, row.note = target and target[:80], note and note[:500]
            s.add(row)

    def audit_trail(self, limit: int = 100) -> list[CommandAuditRow]:
        with self.sessionmaker() as s:
            stmt = select(CommandAuditRow).order_by(CommandAuditRow.id.desc()).limit(limit)
            return list(s.scalars(stmt))

    # -- queries -----------------------------------------------------------------------

    def get(self, command_id: str) -> CommandRecord:
        with self.sessionmaker() as s:
            row = s.get(CommandRow, command_id)
            if row is None:
                raise CommandNotFound(f"command {command_id!r} not found")
            return record_of(row)

    def events(self, command_id: str) -> list[CommandEvent]:
        with self.sessionmaker() as s:
            row = s.get(CommandRow, command_id)
            if row is None:
                raise CommandNotFound(f"command {command_id!r} not found")
            return [event_of(e) for e in row.events]

    def query(
        self,
        *,
        state: CloudState | None = None,
        device_id: str | None = None,
        gateway_id: str | None = None,
        issuer: str | None = None,
        notice_id: str | None = None,
        rule_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[CommandRecord]:
        """Commands, newest first, filtered."""
        stmt = select(CommandRow)
        for column, value in (
            (CommandRow.state, state.value if state else None),
            (CommandRow.device_id, device_id),
            (CommandRow.gateway_id, gateway_id),
            (CommandRow.issuer, issuer),
            (CommandRow.notice_id, notice_id),
            (CommandRow.rule_id, rule_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        stmt = stmt.order_by(CommandRow.issued_at.desc(), CommandRow.id).limit(limit).offset(offset)
        with self.sessionmaker() as s:
            return [record_of(r) for r in s.scalars(stmt)]
