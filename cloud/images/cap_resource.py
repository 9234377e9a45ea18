"""The CAP 1.2 ``resource`` of a flood alert's picture (``GET /cap/alerts.xml``).

A feed is fetched over and over by readers that cache and re-share it, so the link must
be the same on every fetch without storing the token: it is an HMAC (the install's
citizen link key) of the alert and the reading time of the picture's stage change.
Only its SHA-256 is stored, as for the e-mail's links (:mod:`cloud.images.links`), and
it expires 48 h after the feed first showed it. The ``uri`` is that link's JPEG, built
from the configured public base, never a request's ``Host``. ``size`` and ``digest``
(SHA-1, as CAP 1.2 defines it) are of the bytes that URL serves: the masked picture.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select

from cloud.images.alerts import ALERT_KIND, AlertImages
from cloud.images.db import AlertImageRow
from cloud.images.links import PAGE_PATH, ImageLinks
from cloud.images.store import ImageInfo, ImageStore
from cloud.notify.cap import CapResource
from schemas.alert import Alert

log = logging.getLogger(__name__)
_CACHE_MAX = 256  # (size, SHA-1) by content hash: a picture never changes under its hash


def feed_token(key: bytes, alert_id: str, at: datetime) -> str:
    """43 URL-safe characters, unguessable without the install's key."""
    mac = hmac.new(key, f"cap-image:{alert_id}:{at.isoformat()}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


class CapResources:
    def __init__(
        self,
        store: ImageStore,
        alert_images: AlertImages,
        links: ImageLinks,
        key: Callable[[], bytes],
    ) -> None:
        self.store = store
        self.alert_images = alert_images
        self.links = links
        self._key = key
        self._digests: dict[str, tuple[int, str]] = {}

    def for_alert(self, alert: Alert, stage: str | None) -> CapResource | None:
        """The resource of a public flood alert's picture; None when it has none."""
        if alert.kind != ALERT_KIND or not stage or not self.links.may_show(alert):
            return None
        at = self._latest_attach(alert.id)
        picture = self.alert_images.picture(alert.id, at) if at is not None else None
        if at is None or picture is None:
            return None
        sized = self._size_and_sha1(picture)
        if sized is None:
            return None
        token = feed_token(self._key(), alert.id, at)
        self.links.ensure(token, alert.id, at, stage)
        url = self.links.base() + PAGE_PATH.format(token=token) + "/image.jpg"
        return CapResource(uri=url, size=sized[0], digest=sized[1])

    def _latest_attach(self, alert_id: str) -> datetime | None:
        """The reading time the latest picture was attached for (the current stage's)."""
        with self.store.sessions() as s:
            stmt = select(func.max(AlertImageRow.attached_at)).where(
                AlertImageRow.alert_id == alert_id
            )
            return s.scalar(stmt)

    def _size_and_sha1(self, picture: ImageInfo) -> tuple[int, str] | None:
        sha256 = picture.sha256
        if sha256 in self._digests:
            return self._digests[sha256]
        try:
            body = self.store.read(picture)
        except OSError as exc:  # a lost file: no resource rather than a broken link
            log.warning("cap_image_unreadable sha256=%s reason=%s", sha256[:12], exc)
            return None
        if len(self._digests) >= _CACHE_MAX:
            self._digests.clear()
        # CAP 1.2 defines <digest> as SHA-1: an integrity check for readers, not a secret
        sha1 = hashlib.sha1(body, usedforsecurity=False).hexdigest()
        self._digests[sha256] = (len(body), sha1)
        return self._digests[sha256]
