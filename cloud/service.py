"""``CloudService``: the cloud side composed in one process (contract E).

It owns the time-series store, the relational database (tables created on start),
the device registry, the metrics, the detector engine, the alert lifecycle and the
optional notifier, and wires them: for every batch the ingest has stored,
``handle_batch`` runs detectors then alerts; a tick thread runs the time-based
detectors and the alert hold-off once per ``api.tick_s`` (1 s).

Without MQTT (tests, tools) build it and call :meth:`CloudService.handle_batch`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.manager import AlertChange, AlertManager
from cloud.commands.component import Commands
from cloud.commands.component import build as build_commands
from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.db.files import private_dir, sqlite_path
from cloud.db.models import AlertRow, DeviceRow, GatewayRow
from cloud.detect.engine import DetectorEngine
from cloud.detect.tier import DetectorTier, TierSettings
from cloud.errors import SettingsError
from cloud.metrics import Metrics
from cloud.registry import Registry
from cloud.settings import CloudSettings
from cloud.store import open_store
from cloud.store.base import TimeSeriesStore
from schemas.alert import Alert, AlertState
from schemas.clock import ClockFile
from schemas.wire import Batch, DeviceInfo

log = logging.getLogger(__name__)


def _ensure_sqlite_dir(url: str) -> None:
    path = sqlite_path(url)
    if path is not None:
        private_dir(path.parent)  # 0700: the database holds residents' addresses


class CloudService:
    """Holds and wires every cloud component; see the module docstring."""

    def __init__(
        self,
        settings: CloudSettings | None = None,
        *,
        store: TimeSeriesStore | None = None,
        notifier: Any | None = None,
        email: Any | None = None,
    ) -> None:
        self.settings = settings = settings or CloudSettings()
        # wall time in production; the scenario's time when a simulator clock is configured
        self.clock = ClockFile(settings.clock_file)
        self.store: TimeSeriesStore = store if store is not None else open_store(settings.store.url)
        try:
            _ensure_sqlite_dir(settings.database.url)
            self.engine = make_engine(settings.database.url)
            create_all(self.engine)
        except (SQLAlchemyError, OSError) as exc:
            raise SettingsError(
                f"setting database.url: cannot open the database ({type(exc).__name__}: {exc})"
            ) from exc
        self.sessionmaker: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.metrics = Metrics()
        self.metrics.counter("akita_alert_changes_total", "Alert transitions by action")
        self.metrics.counter("akita_detections_total", "Detections handed to the alert lifecycle")
        if settings.ingest.first_seen and settings.environment == "production":
            raise SettingsError(
                "setting ingest.first_seen: true is refused in production (any gateway could "
                "adopt unknown devices); provision them with `akita cloud device add|import`"
            )
        self.registry = Registry(self.sessionmaker, first_seen=settings.ingest.first_seen)
        self.detectors = DetectorEngine(settings.detect)
        self.alerts = AlertManager(
            self.sessionmaker, settings.alerts, store=self.store, clock=self.clock.now
        )
        self.alerts.subscribe(self._count_change)
        self.commands: Commands = build_commands(
            self.sessionmaker, self.registry, settings.commands, self.alerts,
            broker=settings.ingest, metrics=self.metrics, clock=self.clock.now,
            detect=settings.detect, store=self.store,
        )  # fmt: skip
        self.images = self._build_images()  # before the notifier: e-mails link its pictures
        self.email = email if email is not None else self._build_email()
        self.notifier = notifier if notifier is not None else self._build_notifier()
        self.ingest: Any | None = None
        self.tier: DetectorTier | None = None
        self._detect_elsewhere = False  # the ingest hands off to `akita cloud detect`
        self._lock = threading.Lock()  # detectors are not thread-safe: ingest vs tick
        self._load_route_shapes()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.started_at: datetime | None = None
        self._stopped = False

    # -- optional parts ------------------------------------------------------------------

    def _load_route_shapes(self) -> None:
        """The GTFS feed the open-data API matches buses against (``AKITA_GTFS_STATIC``),
        and its route lines for the off-route and layover checks (routes in ``detect``
        win); without them a bus standing at its terminal would raise a long-stop alarm.
        A feed that cannot be read is logged and shown on /health; the service runs on
        without trip matching. A new version is picked up by the tick, no restart."""
        from cloud.opendata.feed import FeedSource
        from cloud.opendata.routes import OpendataConfig

        config = OpendataConfig.from_settings(self.settings.opendata)
        self.gtfs = FeedSource(config.gtfs_static, listeners=[self._set_routes])
        self.gtfs.get()

    def _set_routes(self, static: Any) -> None:
        shapes = static.route_shapes()
        own = self.settings.detect.vehicle.routes
        with self._lock:
            self.detectors.vehicle.set_routes({k: v for k, v in shapes.items() if k not in own})
        log.info("detector_routes loaded=%d source=%s", len(shapes), self.gtfs.path)

    def _build_images(self) -> Any | None:
        if self.settings.images is None:
            return None
        from cloud.citizen.links import public_base
        from cloud.images.component import Images
        from cloud.images.links import ImageLinks
        from cloud.opendata.public import is_public_device

        links = ImageLinks(
            self.sessionmaker,
            base=lambda: public_base(self.settings),
            is_public_device=lambda device_id: is_public_device(self, device_id),
        )
        images = Images(
            self.settings.images, self.engine, self.sessionmaker, self.registry.owned,
            self.settings.ingest, self.metrics, links=links,
        )  # fmt: skip
        self.alerts.subscribe(images.alert_images.on_change)  # a flood alert's picture
        return images

    def _build_email(self) -> Any | None:
        smtp = self.settings.smtp
        if smtp is None:
            return None
        from cloud.notify.email import EmailChannel, SmtpSettings

        return EmailChannel(
            SmtpSettings(
                host=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password,
                starttls=smtp.starttls,
                sender=smtp.sender,
            )
        )

    def _build_notifier(self) -> Any | None:
        settings = self.settings
        if settings.notify is None:
            return None
        from cloud.notify.dispatcher import Dispatcher

        sms = webhook = None
        if settings.sms is not None:
            from cloud.notify.sms import SmsChannel, SmsSettings, create_provider

            sms = SmsChannel(create_provider(SmsSettings(**settings.sms.model_dump())))
        if settings.webhook is not None:
            from cloud.notify.webhook import WebhookChannel

            webhook = WebhookChannel(
                secret=settings.webhook.secret, timeout_s=settings.webhook.timeout_s
            )
        from cloud.citizen.subscriptions import token_for

        dispatcher = Dispatcher(
            sessionmaker=self.sessionmaker,
            config=settings.notify,
            email=self.email,
            sms=sms,
            webhook=webhook,
            channels=[self.commands.notice_channel()],
            device_kind=self._device_kind,
            # residents' messages carry a signed one-step unsubscribe link
            token_for=token_for(self.sessionmaker),
            # 警戒/危険 e-mails link the public page of the alert's picture (cloud/images)
            image_link=self.images.links.url_for if self.images is not None else None,
        )
        dispatcher.attach(self.alerts)
        return dispatcher

    def _device_kind(self, device_id: str) -> str | None:
        info = self.devices().get(device_id)
        return info.kind.value if info is not None else None

    def _count_change(self, change: AlertChange) -> None:
        self.metrics.inc("akita_alert_changes_total", action=change.action)

    # -- the pipeline ----------------------------------------------------------------------

    def devices(self) -> Mapping[str, DeviceInfo]:
        return self.registry.devices()

    def handle_batch(self, batch: Batch, now: datetime | None = None) -> list[AlertChange]:
        """The ingest's ``on_batch`` hook: detectors, then the alert lifecycle."""
        now = now or self.clock.now()
        self.commands.observe_batch(batch)  # residents' notice_seen presses
        with self._lock:
            detections = self.detectors.feed(batch.readings, self.devices())
            detections += self.detectors.seq_gap(batch.gateway_id, batch.seq, batch.sent_at)
        if detections:
            self.metrics.inc("akita_detections_total", len(detections))
        return self.alerts.handle(detections, now)

    def handle_readings(
        self, readings: Sequence[Any], now: datetime | None = None
    ) -> list[AlertChange]:
        """Readings stored by a path without gateway batches (the LPWA worker's meter
        hours): the same detectors and alert lifecycle as :meth:`handle_batch`."""
        now = now or self.clock.now()
        with self._lock:
            detections = self.detectors.feed(readings, self.devices())
        if detections:
            self.metrics.inc("akita_detections_total", len(detections))
        return self.alerts.handle(detections, now)

    def detect_tick(self, now: datetime | None = None) -> list[AlertChange]:
        """Only the detectors' time-based part (a meter silent for days), for a process
        that feeds :meth:`handle_readings` and leaves the alert ticks to `cloud run`."""
        now = now or self.clock.now()
        with self._lock:
            detections = self.detectors.tick(now)
        return self.alerts.handle(detections, now) if detections else []

    def _on_batch(self, batch: Batch) -> None:
        self.handle_batch(batch)

    def tick(self, now: datetime | None = None) -> list[AlertChange]:
        """Time-based detections and alert hold-offs; the tick thread calls this. Where
        the detector tier detects (:meth:`start`), it runs those itself."""
        now = now or self.clock.now()
        changes: list[AlertChange] = []
        if self.tier is None and not self._detect_elsewhere:
            with self._lock:
                detections = self.detectors.tick(now)
            changes = self.alerts.handle(detections, now) if detections else []
            changes += self.alerts.tick(now)
            if self.notifier is not None:
                self.notifier.tick(now)  # escalation / re-notify of unacknowledged alerts
        self.gtfs.get()  # a new GTFS feed version, without a restart (stat every 5 s)
        if self.images is not None:
            self.images.tick(now)  # image retention (paced by images.retention_every_s)
        return changes

    def _tick_loop(self) -> None:
        period = self.settings.api.tick_s
        while not self._stop.wait(period):
            try:
                self.tick()
            except Exception:  # the loop must survive a bad tick; say why
                log.exception("tick_failed")

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, *, ingest: bool = True, detect: TierSettings | None = None) -> None:
        """Start the ingest worker (unless ``ingest=False``) and detection.

        Where detection runs (docs/scaling.md): ``detect`` given, this process is one
        instance of the detector tier (``akita cloud detect``); with ``ingest.handoff``
        the ingest hands every stored batch to that tier and detects nothing here; in a
        shared-subscription group, this process is the only detector and also takes the
        batches the other ingest workers hand off; alone on a plain subscription, it
        detects in process (the tick thread runs the time-based part).
        """
        self.started_at = self.clock.now()
        self._stop.clear()
        handoff = self.settings.ingest.handoff
        if detect is not None:
            self.tier = self._make_tier(detect, exclusive=False)
        elif ingest and not handoff and self.settings.ingest.group is not None:
            # credentials and timings from AKITA_DETECT_* as for `akita cloud detect`
            only = TierSettings.from_env(partitions=self.settings.ingest.detect_partitions)
            self.tier = self._make_tier(only, exclusive=True)
        if self.tier is not None:
            self.tier.start()
        if detect is None:  # one command publisher per cloud process, not per tier member
            self.commands.start()
        if ingest:
            self._start_ingest()
            if self.images is not None:
                self.images.start()  # one image receiver, beside the ingest (cloud/images)
        self._detect_elsewhere = ingest and handoff
        self._ticker = threading.Thread(target=self._tick_loop, name="akita-tick", daemon=True)
        self._ticker.start()
        log.info(
            "cloud_started store=%r ingest=%s detection=%s",
            self.store,
            self.ingest is not None,
            "tier" if self.tier is not None else ("elsewhere" if handoff else "in process"),
        )

    def _make_tier(self, settings: TierSettings, *, exclusive: bool) -> DetectorTier:
        def on_tick(now: datetime) -> None:
            if self.notifier is not None:
                self.notifier.tick(now)  # escalation: where the alert ticks run, once

        return DetectorTier(
            settings,
            self.settings.ingest,
            self.sessionmaker,
            self.alerts,
            self.devices,
            self.settings.detect,
            clock=self.clock.now,
            exclusive=exclusive,
            engine_factory=lambda: self._tier_engine(),
            on_tick=on_tick,
            # no ingest in `akita cloud detect` to reload it: the tier does
            refresh=None if exclusive else self.registry.refresh,
        )

    def _tier_engine(self) -> DetectorEngine:
        """A partition's detectors, with the bus routes known here (GTFS)."""
        engine = DetectorEngine(self.settings.detect)
        engine.vehicle.routes.update(self.detectors.vehicle.routes)
        return engine

    def _on_stored(self, batch: Batch, reset: bool) -> None:
        assert self.tier is not None
        self.commands.observe_batch(batch)
        self.tier.offer(batch, self.registry.owned(batch.gateway_id), reset=reset)

    def _start_ingest(self) -> None:
        from cloud.ingest import IngestWorker

        tier = self.tier is not None
        self.ingest = IngestWorker(
            self.settings.ingest,
            self.store,
            self.registry,
            metrics=self.metrics,
            on_batch=None if tier or self.settings.ingest.handoff else self._on_batch,
            on_stored=self._on_stored if tier else None,
            clock=self.clock.now_ts,
        )
        self.ingest.start()

    def stop(self) -> None:
        """Stop the tick thread and the ingest, close the store. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
            self._ticker = None
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest = None
        if self.images is not None:
            self.images.stop()
        if self.tier is not None:
            self.tier.stop()
            self.tier = None
        self.commands.stop()
        if self.notifier is not None and hasattr(self.notifier, "close"):
            self.notifier.close()
        with contextlib.suppress(Exception):
            self.store.close()
        self.engine.dispose()
        log.info("cloud_stopped")

    # -- status ------------------------------------------------------------------------

    def metrics_text(self) -> str:
        return self.metrics.render()

    def health(self) -> dict[str, Any]:
        """Component status for ``/health`` (no secrets, no URLs with credentials)."""
        store_ok = self.store.ping()
        store: dict[str, Any] = {"kind": type(self.store).__name__}
        db_ok = True
        try:
            with self.sessionmaker() as s:
                s.execute(text("SELECT 1"))
        except SQLAlchemyError:
            db_ok = False
        broker_ok: bool | None = None
        ingest_ok: bool | None = None
        ingest: dict[str, Any] = {"running": False}
        worker = self.ingest
        if worker is not None:
            h = worker.health()
            broker_ok, ingest_ok = h.broker_connected, h.ok
            store_ok = store_ok and h.store_ok
            store.update(
                writes_ok=h.store_ok,
                error=h.store_error,
                down_since=h.store_down_since.isoformat() if h.store_down_since else None,
                last_write_at=h.last_write_at.isoformat() if h.last_write_at else None,
            )
            ingest = {
                "running": True,
                "lag_s": h.lag_s,
                "points_per_s": h.points_per_s,
                "buffer_depth": h.buffer_depth,
                "buffer_limit": h.buffer_limit,
                "backpressure": h.backpressure,
                "dead_letters": h.dead_letters,
                "gaps": h.gaps,
                "duplicates": h.duplicates,
            }
        ok = store_ok and db_ok and broker_ok is not False
        broker = {
            "host": self.settings.ingest.broker_host,
            "port": self.settings.ingest.broker_port,
        }
        return {
            "status": "ok" if ok else "degraded",
            "broker": {"ok": broker_ok, "detail": broker if worker is not None else {}},
            "store": {"ok": store_ok, "detail": store},
            "ingest": {"ok": ingest_ok, "detail": ingest},
            "database": {"ok": db_ok, "detail": {"dialect": self.engine.dialect.name}},
            # not part of status: without a usable feed buses are still published
            "gtfs": self.gtfs.status(),
        }

    def snapshot(self) -> dict[str, Any]:
        """Figures for the demo's live summary."""
        with self.sessionmaker() as s:
            devices_total = s.scalar(select(func.count()).select_from(DeviceRow)) or 0
            devices_online = (
                s.scalar(
                    select(func.count()).select_from(DeviceRow).where(DeviceRow.state == "online")
                )
                or 0
            )
            gateways_online = (
                s.scalar(
                    select(func.count()).select_from(GatewayRow).where(GatewayRow.state == "online")
                )
                or 0
            )
            alerts_open = (
                s.scalar(
                    select(func.count())
                    .select_from(AlertRow)
                    .where(AlertRow.state != AlertState.RESOLVED.value)
                )
                or 0
            )
        recent: list[Alert] = [r.alert for r in self.alerts.query(limit=10)]
        return {
            "points_total": int(self.metrics.value("akita_ingest_readings_total")),
            "points_per_s": self.metrics.value("akita_ingest_points_per_second"),
            "devices_total": devices_total,
            "devices_online": devices_online,
            "gateways_online": gateways_online,
            "alerts_open": alerts_open,
            "recent_alerts": recent,
        }
