"""Public links to a flood alert's picture, sent in the residents' 警戒/危険 e-mail.

A link is a capability: 32 random bytes (``secrets.token_urlsafe``) of which only the
SHA-256 is stored, like the citizen report status tokens, so neither the database nor
a log opens the page. It names an alert and the reading time of the stage change, and
expires after ``ttl`` (48 h). The URL is built from the configured public base
(``api.public_url`` through :func:`cloud.citizen.links.public_base`), never a request's
``Host``. A link is made only for a public alert of a public device whose site has a
camera; whether the page may still show it is checked again when it is opened.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.images.alerts import cameras_at
from cloud.images.db import ImageLinkRow
from schemas.alert import Alert

LINK_TTL = timedelta(hours=48)
LINK_STAGES = ("warning", "danger")  # 警戒 and 危険: the stages whose e-mail carries a link
PAGE_PATH = "/citizen/flood/images/{token}"
MAX_TOKEN_CHARS = 100


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class LinkState(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ImageLink:
    alert_id: str
    at: datetime
    stage: str
    expires_at: datetime


class ImageLinks:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        base: Callable[[], str],
        is_public_device: Callable[[str], bool],
        ttl: timedelta = LINK_TTL,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.base = base
        self.is_public_device = is_public_device
        self.ttl = ttl
        self._now = now

    def may_show(self, alert: Alert) -> bool:
        """A public alert of a device of a public kind (never a call unit's)."""
        return (
            alert.public and alert.device_id is not None and self.is_public_device(alert.device_id)
        )

    def url_for(self, alert: Alert, stage: str | None, at: datetime) -> str | None:
        """A new link for the e-mail of ``alert`` at ``stage``; None where none belongs."""
        if stage not in LINK_STAGES or not alert.site or not self.may_show(alert):
            return None
        if not cameras_at(self.sessions, alert.site):
            return None
        token = secrets.token_urlsafe(32)
        row = ImageLinkRow(
            token_hash=token_hash(token), alert_id=alert.id, at=at, stage=stage,
            expires_at=self._now() + self.ttl,
        )  # fmt: skip
        with self.sessions() as s, s.begin():
            s.add(row)
        return self.base() + PAGE_PATH.format(token=token)

    def ensure(self, token: str, alert_id: str, at: datetime, stage: str) -> None:
        """Store ``token``'s hash unless it is stored already (the CAP feed's link is the
        same on every fetch, :mod:`cloud.images.cap_resource`); its expiry is kept."""
        digest = token_hash(token)
        try:
            with self.sessions() as s, s.begin():
                if s.get(ImageLinkRow, digest) is None:
                    s.add(ImageLinkRow(
                        token_hash=digest, alert_id=alert_id, at=at, stage=stage,
                        expires_at=self._now() + self.ttl,
                    ))  # fmt: skip
        except IntegrityError:
            pass  # two feed requests at once: the other stored the same row

    def find(self, token: str) -> tuple[LinkState, ImageLink | None]:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return LinkState.UNKNOWN, None
        with self.sessions() as s:
            row = s.get(ImageLinkRow, token_hash(token))
            if row is None:
                return LinkState.UNKNOWN, None
            link = ImageLink(row.alert_id, row.at, row.stage, row.expires_at)
        if self._now() >= link.expires_at:
            return LinkState.EXPIRED, link
        return LinkState.VALID, link

    def prune(self, keep: timedelta = timedelta(days=30)) -> int:
        """Delete links expired for longer than ``keep``: until then an old e-mail's link
        still says "expired" (410) rather than "not found"."""
        with self.sessions() as s, s.begin():
            result = s.execute(
                delete(ImageLinkRow).where(ImageLinkRow.expires_at < self._now() - keep)
            )
            return int(getattr(result, "rowcount", 0) or 0)
