"""A flood alert's picture: the image of a camera on its site nearest its reading time.

When a ``flood_stage`` alert opens or changes stage, the reading time of that change is
recorded as a *want* (``alert_image_wants``) and the nearest image already stored
within ``within`` of it is attached (:meth:`ImageStore.attach`). Images taken around
that time may still be on their way (one in flight per gateway, held in its spool
while the uplink is down), so each newly stored image is offered to the wants of its
camera's site: it is attached when the alert is still active and it is nearer to the
want's time than the picture attached so far. Wants live in the database because the
image may arrive in another process than the alert change, or after a restart.

The camera's site is the registry's (``akita cloud device import``), never the image
header's: a gateway cannot file a picture under another site.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.manager import ACTIVE_STATES
from cloud.db.models import AlertRow, DeviceRow
from cloud.images.db import AlertImageWantRow
from cloud.images.store import ImageInfo, ImageStore
from cloud.images.validate import CAMERA_KIND
from schemas.alert import Alert

log = logging.getLogger(__name__)

ALERT_KIND = "flood_stage"
DEFAULT_WITHIN = timedelta(minutes=10)


class ChangeLike(Protocol):
    """What is read from :class:`cloud.alerts.manager.AlertChange`."""

    @property
    def alert(self) -> Alert: ...
    @property
    def action(self) -> str: ...
    @property
    def at(self) -> datetime: ...


def reading_time(change: ChangeLike) -> datetime:
    """The time of the reading that caused the change (the change's own time without one)."""
    detection: Any = getattr(change, "detection", None)
    return detection.ts if detection is not None else change.at  # type: ignore[no-any-return]


def cameras_at(sessions: sessionmaker[Session], site: str) -> list[str]:
    with sessions() as s:
        stmt = select(DeviceRow.device_id).where(
            DeviceRow.kind == CAMERA_KIND, DeviceRow.site == site
        )
        return list(s.scalars(stmt.order_by(DeviceRow.device_id)))


def _gap_s(info: ImageInfo, at: datetime) -> float:
    return abs((info.taken_at - at).total_seconds())


def nearest_of(images: Sequence[ImageInfo], at: datetime, within: timedelta) -> ImageInfo | None:
    """The image taken closest to ``at`` within ``within`` (earlier one on a tie)."""
    near = [i for i in images if _gap_s(i, at) <= within.total_seconds()]
    return min(near, key=lambda i: (_gap_s(i, at), i.taken_at, i.id), default=None)


class AlertImages:
    """Attaches flood alerts' pictures; see the module docstring."""

    def __init__(
        self,
        store: ImageStore,
        sessions: sessionmaker[Session],
        within: timedelta = DEFAULT_WITHIN,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.within = within

    def picture(self, alert_id: str, at: datetime) -> ImageInfo | None:
        """The attached image of ``alert_id`` nearest to ``at`` (what a link shows)."""
        return nearest_of(self.store.for_alert(alert_id), at, self.within)

    # --- the alert side (an AlertManager listener) ------------------------------------

    def on_change(self, change: ChangeLike) -> None:
        alert = change.alert
        if alert.kind != ALERT_KIND or change.action not in ("open", "update") or not alert.site:
            return
        at = reading_time(change)
        with self.sessions() as s, s.begin():
            s.merge(AlertImageWantRow(alert_id=alert.id, at=at, site=alert.site))
        found = self.store.nearest(cameras_at(self.sessions, alert.site), at, self.within)
        if found is not None:
            self._attach(alert.id, at, found)

    # --- the image side (the receiver, after an image is stored) -----------------------

    def on_stored(self, image_id: int) -> None:
        info = self.store.get(image_id)
        if info is None:
            return
        with self.sessions() as s:
            site = s.scalar(select(DeviceRow.site).where(DeviceRow.device_id == info.camera_id))
            if not site:
                return
            wants = s.execute(
                select(AlertImageWantRow.alert_id, AlertImageWantRow.at)
                .join(AlertRow, AlertRow.id == AlertImageWantRow.alert_id)
                .where(
                    AlertImageWantRow.site == site,
                    AlertRow.state.in_(ACTIVE_STATES),
                    AlertImageWantRow.at >= info.taken_at - self.within,
                    AlertImageWantRow.at <= info.taken_at + self.within,
                )
            ).all()
        for alert_id, at in wants:
            held = self.picture(alert_id, at)
            if held is None or _gap_s(info, at) < _gap_s(held, at):
                self._attach(alert_id, at, info)

    def _attach(self, alert_id: str, at: datetime, info: ImageInfo) -> None:
        self.store.attach(alert_id, info.id, at)
        log.info(
            "alert_image_attached alert=%s image=%d camera=%s gap_s=%.0f",
            alert_id,
            info.id,
            info.camera_id,
            _gap_s(info, at),
        )

    def prune(self) -> int:
        """Forget the wants of alerts no longer active (their pictures stay attached)."""
        with self.sessions() as s, s.begin():
            active = select(AlertRow.id).where(AlertRow.state.in_(ACTIVE_STATES))
            result = s.execute(
                delete(AlertImageWantRow).where(AlertImageWantRow.alert_id.not_in(active))
            )
            return int(getattr(result, "rowcount", 0) or 0)
