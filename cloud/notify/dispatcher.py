"""The dispatcher: turns alert changes into messages and sends them off the ingest path.

``on_change`` (an :class:`~cloud.alerts.manager.AlertManager` listener) only queues the
change. A planner thread routes it (staff contact groups, resident subscribers),
renders the templates, applies the rate limits and the per-alert cap, and records a
``notify_deliveries`` row per recipient; a small pool of sender threads then sends,
retrying retryable failures with exponential backoff, and records the outcome.

Residents get one message when a public flood/heat alert opens and one per stage
change upwards (``resident_notify_downgrades`` adds the way down); staff get the open,
severity increases, and the escalation steps of :mod:`cloud.notify.escalation`.
Logs name recipients only by a hash prefix.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from cloud.db.notify import DeliveryRow, create_tables
from cloud.errors import CloudError
from cloud.notify.channels import Channel, Channels, Envelope
from cloud.notify.config import NotifyConfig, RateLimit
from cloud.notify.email import EmailChannel
from cloud.notify.errors import NotifyError
from cloud.notify.escalation import EscalationStep, Escalator
from cloud.notify.limits import Limiter
from cloud.notify.messages import Message, local_time, map_url, render_message
from cloud.notify.recipients import Recipient
from cloud.notify.routing import DeviceKindOf, Router, TokenFor
from cloud.notify.sms import SmsChannel
from cloud.notify.stages import stage_of, stage_rank
from cloud.notify.webhook import WebhookChannel
from schemas.alert import Alert

log = logging.getLogger(__name__)


class ChangeLike(Protocol):
    """What the dispatcher reads from :class:`cloud.alerts.manager.AlertChange`."""

    @property
    def alert(self) -> Alert: ...
    @property
    def action(self) -> str: ...
    @property
    def at(self) -> datetime: ...


class ShelterLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...

    def distance_m(self, lat: float, lon: float) -> float: ...


ShelterFinder = Callable[[float, float], ShelterLike | None]
# (alert, stage, reading time) -> public link to the alert's picture, or None (cloud/images)
ImageLinkFor = Callable[[Alert, str | None, datetime], str | None]


class Recorder(Protocol):
    """``AlertManager.record``: writes escalate/renotify to the alert's audit trail."""

    def __call__(
        self,
        alert_id: str,
        action: str,
        *,
        actor: str = ...,
        note: str | None = ...,
        at: datetime | None = ...,
    ) -> object: ...


def _default_shelter(lat: float, lon: float) -> ShelterLike | None:
    from cloud.shelters import nearest_flood_shelter

    return nearest_flood_shelter(lat, lon)


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    alert: Alert
    action: str
    recipient: Recipient
    message: Message
    stage: str | None


def _extra_of(change: Any) -> Mapping[str, Any]:
    extra = getattr(change, "extra", None)
    if extra:
        return dict(extra)
    det = getattr(change, "detection", None)
    return dict(det.extra) if det is not None else {}


class Dispatcher:
    """Listens to alert changes and delivers notifications; see the module docstring.

    ``tick(now)`` drives escalation (call it from the service's tick loop);
    ``flush()`` waits until everything queued so far has been sent or given up;
    ``close()`` stops the threads.
    """

    def __init__(
        self,
        *,
        sessionmaker: sessionmaker[Session],
        config: NotifyConfig,
        email: EmailChannel | None = None,
        sms: SmsChannel | None = None,
        webhook: WebhookChannel | None = None,
        channels: Iterable[Channel] = (),
        device_kind: DeviceKindOf | None = None,
        token_for: TokenFor | None = None,
        shelter_finder: ShelterFinder = _default_shelter,
        recorder: Recorder | None = None,
        image_link: ImageLinkFor | None = None,
    ) -> None:
        self.config = config
        self._image_link = image_link
        self._sm = sessionmaker
        bind = sessionmaker.kw.get("bind")
        if bind is not None:
            create_tables(bind)
        # every configured channel object, by name (cloud.notify.channels)
        self.channels = Channels([email, sms, webhook, *channels])
        self.router = Router(config, sessionmaker, device_kind=device_kind, token_for=token_for)
        self.escalator = Escalator(config.escalation)
        self._shelter = shelter_finder
        self._recorder = recorder
        self._limits = {
            "staff": Limiter(config.staff_limit),
            "resident": Limiter(config.resident_limit),
        }
        # per alert: highest resident stage rank messaged, highest staff severity rank
        self._resident_rank: dict[str, int] = {}
        self._staff_rank: dict[str, int] = {}
        self._inbox: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._stop = threading.Event()
        # one FIFO lane per sender thread, chosen by recipient: a recipient's messages
        # arrive in order (注意 before 警戒) while other recipients proceed in parallel
        self._lanes: list[queue.Queue[_Job | None]] = [queue.Queue() for _ in range(config.workers)]
        self._senders = [
            threading.Thread(target=self._send_loop, args=(lane,), name=f"notify-send-{i}",
                             daemon=True)
            for i, lane in enumerate(self._lanes)
        ]  # fmt: skip
        for t in self._senders:
            t.start()
        self._planner = threading.Thread(target=self._plan_loop, name="notify-plan", daemon=True)
        self._planner.start()

    @property
    def email(self) -> EmailChannel | None:
        return self.channels.get("email")  # type: ignore[return-value]

    @property
    def sms(self) -> SmsChannel | None:
        return self.channels.get("sms")  # type: ignore[return-value]

    @property
    def webhook(self) -> WebhookChannel | None:
        return self.channels.get("webhook")  # type: ignore[return-value]

    # -- wiring ----------------------------------------------------------------------

    def attach(self, manager: Any) -> None:
        """Subscribe to an AlertManager, use its ``record`` for the audit trail, and pick
        up the alerts already active (after a restart: escalation continues, residents
        are not told again about a stage they already had)."""
        if self._recorder is None and hasattr(manager, "record"):
            self._recorder = manager.record
        for rec in getattr(manager, "active_records", list)():
            alert = rec.alert
            self._staff_rank[alert.id] = alert.severity.rank
            topic = self.router.topic(alert)
            if topic is not None:
                self._resident_rank[alert.id] = stage_rank(topic, stage_of(topic, alert, rec.extra))
            self._observe(alert, "open", alert.updated_at)
        manager.subscribe(self.on_change)

    def _observe(self, alert: Alert, action: str, at: datetime) -> None:
        groups: list[str] = []
        if action in ("open", "update") and self.escalator.is_critical(alert):
            route = self.router.route(alert)  # only for critical alerts: keeps ingest cheap
            groups = list(route.groups) if route else []
        self.escalator.observe(alert, action, groups, at)

    def on_change(self, change: ChangeLike) -> None:
        """AlertManager listener: never blocks the caller (ingest)."""
        self._observe(change.alert, change.action, change.at)
        self._put(("change", change))

    def tick(self, now: datetime) -> list[EscalationStep]:
        """Escalate / re-notify unacknowledged critical alerts due at ``now``."""
        steps = self.escalator.tick(now)
        for step in steps:
            self._put(("step", step))
        return steps

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued change has been planned and every send has finished."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._inbox.put(None)
        self._planner.join(timeout)
        for lane in self._lanes:
            lane.put(None)
        for t in self._senders:
            t.join(timeout)

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- bookkeeping ------------------------------------------------------------------

    def _put(self, item: tuple[str, Any]) -> None:
        with self._idle:
            self._pending += 1
        self._inbox.put(item)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    # -- planning -----------------------------------------------------------------------

    def _plan_loop(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            kind, payload = item
            try:
                if kind == "change":
                    self._plan_change(payload)
                else:
                    self._plan_step(payload)
            except Exception:  # the planner must survive one bad change; say which
                log.exception("notify_plan_failed item=%s", kind)
            finally:
                self._done()

    def _plan_change(self, change: Any) -> None:
        alert: Alert = change.alert
        action: str = change.action
        if action == "resolve":
            told = self._resident_rank.pop(alert.id, None)
            self._staff_rank.pop(alert.id, None)
            for limiter in self._limits.values():
                limiter.forget_alert(alert.id)
            # only when the condition itself cleared: staff resolve an alert for other
            # reasons too (a broken sensor), and residents must not hear "it is over" then
            automatic = getattr(change, "actor", "system") == "system"
            if told is not None and automatic and self.config.resident_all_clear:
                self._plan_all_clear(change, alert)
            return
        if action not in ("open", "update"):
            return
        extra = _extra_of(change)
        self._plan_staff(change, alert, action, extra)
        self._plan_residents(change, alert, action, extra)

    def _plan_staff(self, change: Any, alert: Alert, action: str, extra: Mapping[str, Any]) -> None:
        route = self.router.route(alert)
        if route is None:
            return
        rank = alert.severity.rank
        if action == "update" and rank <= self._staff_rank.get(alert.id, 0):
            return
        if action == "update" and alert.id not in self._staff_rank:
            action = "open"  # first time it reaches a route's minimum severity
        self._staff_rank[alert.id] = rank
        topic = self.router.topic(alert) or ("flood" if alert.kind.startswith("flood") else None)
        context = self._staff_context(alert, action, stage_of(topic, alert, extra), change)
        for member in self.router.group_members(route.groups[0]):
            self._enqueue(alert, action, member, "staff", context, change.at, None)

    def _plan_residents(
        self, change: Any, alert: Alert, action: str, extra: Mapping[str, Any]
    ) -> None:
        topic = self.router.topic(alert)
        if topic is None:
            return
        stage = stage_of(topic, alert, extra)
        rank = stage_rank(topic, stage)
        told = self._resident_rank.get(alert.id)
        if told is None:
            action = "open"  # first message to residents about this alert
        elif action != "update":
            return
        elif not (rank > told or (self.config.resident_notify_downgrades and rank != told)):
            return  # same stage, or a fall we do not announce: no storm from a flapping level
        self._resident_rank[alert.id] = rank
        shelter = None
        if topic == "flood" and alert.lat is not None and alert.lon is not None:
            found = self._shelter(alert.lat, alert.lon)
            if found is not None:
                shelter = {
                    "name": found.name,
                    "address": found.address,
                    "distance_m": found.distance_m(alert.lat, alert.lon),
                }
        self._tell_residents(
            alert,
            topic,
            action,
            stage,
            alert.updated_at,
            change.at,
            map_url=map_url(alert.lat, alert.lon) if topic == "flood" else None,
            shelter=shelter,
            image_url=self._picture_link(change, alert, topic, stage),
        )

    def _picture_link(self, change: Any, alert: Alert, topic: str, stage: str | None) -> str | None:
        """One link per message (all its residents share it: the page shows the road,
        nothing about the reader); the picture nearest the reading that changed stage."""
        if self._image_link is None or topic != "flood":
            return None
        det = getattr(change, "detection", None)
        return self._image_link(alert, stage, det.ts if det is not None else change.at)

    def _plan_all_clear(self, change: Any, alert: Alert) -> None:
        """解除: the residents this alert reached hear that it is over (the rate limits
        still apply, so a flapping level cannot turn this into a storm either)."""
        topic = self.router.topic(alert)
        if topic is None:
            return
        self._tell_residents(alert, topic, "resolve", None, change.at, change.at)

    def _tell_residents(
        self,
        alert: Alert,
        topic: str,
        action: str,
        stage: str | None,
        observed: datetime,
        at: datetime,
        *,
        map_url: str | None = None,
        shelter: Mapping[str, Any] | None = None,
        image_url: str | None = None,
    ) -> None:
        """One message to every resident subscribed to the alert's area (stage None: the
        all-clear, recorded as stage ``clear``)."""
        base = {
            "alert": alert,
            "action": action,
            "stage": stage,
            "topic": topic,
            "depth": alert.value if topic == "flood" else None,
            "value": alert.value,
            "observed_at": local_time(observed, self.config.timezone),
            "map_url": map_url,
            "shelter": shelter,
            "image_url": image_url,
        }
        for sub in self.router.residents(alert):
            context = {**base, "unsubscribe_url": sub.unsubscribe_url}
            self._enqueue(alert, action, sub, "resident_" + topic, context, at, stage or "clear")

    def _staff_context(
        self, alert: Alert, action: str, stage: str | None, change: Any, **more: Any
    ) -> dict[str, Any]:
        return {
            "alert": alert,
            "action": action,
            "stage": stage,
            "value": alert.value,
            "started_at": local_time(alert.started_at, self.config.timezone),
            "map_url": map_url(alert.lat, alert.lon),
            "ack_url": self.config.ack_url.format(alert_id=alert.id),
            "district": getattr(change, "district", None),
            "level": 0,
            "unacked_min": 0,
            **more,
        }

    def _plan_step(self, step: EscalationStep) -> None:
        if not self.escalator.tracking(step.alert.id):
            return  # acknowledged or resolved since the tick
        common = {"level": step.level, "unacked_min": round(step.unacked_s / 60)}
        targets: list[tuple[str, str]] = [(g, "renotify") for g in step.remind]
        if step.escalate_to is not None:
            targets.append((step.escalate_to, "escalate"))
        for group, action in targets:
            context = self._staff_context(step.alert, action, None, None, **common)
            for member in self.router.group_members(group):
                self._enqueue(step.alert, action, member, "staff", context, step.at, None)
        if self._recorder is not None:
            note = f"level={step.level + 1} to={step.escalate_to or ','.join(step.remind)}"
            try:
                self._recorder(step.alert.id, step.action, note=note, at=step.at)
            except CloudError as exc:
                log.warning("notify_audit_failed alert=%s reason=%s", step.alert.id, exc)
        log.info(
            "alert_%s alert=%s level=%d unacked_s=%.0f",
            step.action,
            step.alert.id,
            step.level + 1,
            step.unacked_s,
        )

    def _limit(self, audience: str) -> Limiter:
        return self._limits["resident" if audience == "resident" else "staff"]

    def _enqueue(
        self,
        alert: Alert,
        action: str,
        recipient: Recipient,
        template: str,
        context: dict[str, Any],
        at: datetime,
        stage: str | None,
    ) -> None:
        key = recipient.key(self.config.recipient_salt)
        reason = self._limit(recipient.audience).admit(key, alert.id, at)
        message = None if reason else render_message(template, recipient.lang, context)
        row = DeliveryRow(
            alert_id=alert.id,
            action=action,
            audience=recipient.audience,
            channel=recipient.channel,
            group=recipient.group,
            subscription_id=recipient.subscription_id,
            recipient_hash=key,
            recipient_masked=recipient.masked,
            template=template,
            lang=recipient.lang,
            stage=stage,
            status="suppressed" if reason else "queued",
            reason=reason,
            attempts=0,
            created_at=datetime.now(UTC),
            finished_at=datetime.now(UTC) if reason else None,
        )
        with self._sm() as s, s.begin():
            s.add(row)
            s.flush()
            delivery_id = row.id
        if reason:
            log.info(
                "notify_suppressed alert=%s action=%s channel=%s to=%s reason=%s",
                alert.id,
                action,
                recipient.channel,
                key[:12],
                reason,
            )
            return
        assert message is not None
        with self._idle:
            self._pending += 1
        lane = self._lanes[int(key[:8], 16) % len(self._lanes)]
        # the channel sees the alert's stage for staff too (a notice, a webhook)
        job_stage = stage if stage is not None else context.get("stage")
        lane.put(_Job(delivery_id, alert, action, recipient, message, job_stage))

    # -- sending ------------------------------------------------------------------------

    def _deliver(self, job: _Job) -> None:
        r = job.recipient
        envelope = Envelope(job.alert, job.action, job.stage, r.lang)
        self.channels.deliver(r.channel, r.address, job.message, envelope)

    def _send_loop(self, lane: queue.Queue[_Job | None]) -> None:
        while True:
            job = lane.get()
            if job is None:
                return
            self._send(job)

    def _send(self, job: _Job) -> None:
        retry = self.config.retry
        key = job.recipient.key(self.config.recipient_salt)[:12]
        status, attempts = "failed", 0
        reason: str | None = "retries"
        error: str | None = None
        try:
            for attempt in range(1, retry.attempts + 1):
                attempts = attempt
                try:
                    self._deliver(job)
                    status, reason, error = "sent", None, None
                    break
                except NotifyError as exc:
                    error = str(exc)
                    if not exc.retryable:
                        reason = "permanent"
                        break
                    if attempt < retry.attempts:
                        delay = min(retry.backoff_s * 2 ** (attempt - 1), retry.backoff_max_s)
                        log.info(
                            "notify_retry alert=%s channel=%s to=%s attempt=%d wait_s=%.1f "
                            "reason=%s",
                            job.alert.id,
                            job.recipient.channel,
                            key,
                            attempt,
                            delay,
                            exc,
                        )
                        if self._stop.wait(delay):
                            reason = "shutdown"
                            break
        except Exception as exc:  # a sender bug must not kill the pool thread; record it
            log.exception("notify_send_crashed alert=%s to=%s", job.alert.id, key)
            error = f"{type(exc).__name__}"
        finally:
            self._finish(job, status, reason, error, attempts, key)

    def _finish(
        self,
        job: _Job,
        status: str,
        reason: str | None,
        error: str | None,
        attempts: int,
        key: str,
    ) -> None:
        try:
            with self._sm() as s, s.begin():
                row = s.get(DeliveryRow, job.delivery_id)
                if row is not None:
                    row.status, row.reason, row.error = status, reason, error
                    row.attempts, row.finished_at = attempts, datetime.now(UTC)
            log_fn = log.info if status == "sent" else log.warning
            log_fn(
                "notify_%s alert=%s action=%s audience=%s channel=%s to=%s attempts=%d%s",
                status,
                job.alert.id,
                job.action,
                job.recipient.audience,
                job.recipient.channel,
                key,
                attempts,
                f" reason={reason} error={error}" if status != "sent" else "",
            )
        finally:
            self._done()

    # -- introspection --------------------------------------------------------------------

    def limits(self) -> dict[str, RateLimit]:
        return {name: lim.limit for name, lim in self._limits.items()}
