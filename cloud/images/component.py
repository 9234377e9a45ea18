"""The image part of the cloud service: the store, its receiver and retention pacing.

:class:`cloud.service.CloudService` builds one when ``[images]`` is configured, starts
the receiver with the ingest (``akita cloud run``) and calls :meth:`Images.tick` from its
tick thread; the retention sweep runs once per ``images.retention_every_s``. Flood
alerts get their pictures through :attr:`Images.alert_images` (an alert listener and the
receiver's ``on_stored``), residents' e-mails their public links through
:attr:`Images.links`.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.citizen.subscriptions import link_key
from cloud.errors import SettingsError
from cloud.images.alerts import AlertImages
from cloud.images.cap_resource import CapResources
from cloud.images.links import ImageLinks
from cloud.images.receiver import ImageReceiver
from cloud.images.settings import ImageSettings
from cloud.images.store import ImageStore
from cloud.images.validate import Owned
from cloud.ingest.settings import IngestSettings
from cloud.metrics import Metrics

log = logging.getLogger(__name__)


class Images:
    def __init__(
        self,
        settings: ImageSettings,
        engine: Engine,
        sessions: sessionmaker[Session],
        owned: Owned,
        broker: IngestSettings,
        metrics: Metrics,
        *,
        links: ImageLinks | None = None,
    ) -> None:
        if settings.receive and settings.username and settings.username == broker.username:
            raise SettingsError(
                f"setting images.username: {settings.username!r} is the ingest's user; the "
                "broker ties a session to its username, so give the receiver its own "
                "(make-service-credential.sh akita-images)"
            )
        try:
            self.store = ImageStore(engine, sessions, settings)
        except OSError as exc:
            raise SettingsError(f"setting images.dir: {settings.dir}: {exc}") from exc
        self.settings = settings
        self.metrics = metrics
        metrics.counter("akita_images_pruned_total", "Image index rows removed by retention")
        self.alert_images = AlertImages(
            self.store, sessions, timedelta(seconds=settings.alert_within_s)
        )
        # None: no public picture links (tests and tools without a public base)
        self.links = links
        # the CAP feed's pictures use the citizen pages' install key for their links
        self.cap = (
            CapResources(self.store, self.alert_images, links, lambda: link_key(sessions))
            if links is not None
            else None
        )
        self.receiver = ImageReceiver(
            self.store, owned, broker, settings, metrics, on_stored=self.alert_images.on_stored
        )
        self._receiving = False
        self._next_prune = 0.0

    def start(self) -> None:
        if self.settings.receive:
            self.receiver.start()
            self._receiving = True

    def stop(self) -> None:
        if self._receiving:
            self.receiver.stop()
            self._receiving = False

    def tick(self, now: datetime) -> None:
        """Retention, paced; ``now`` is the service clock (the simulator's in the demo)."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self.settings.retention_every_s
        rows, _files = self.store.prune(now)
        self.alert_images.prune()
        if self.links is not None:
            self.links.prune()
        if rows:
            self.metrics.inc("akita_images_pruned_total", rows)

    def health(self) -> dict[str, object]:
        return {"receiving": self._receiving, **self.receiver.health()}
