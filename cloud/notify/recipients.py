"""Recipients and how they appear outside the send call: a salted hash (stored, logged
as a prefix) and a masked form (stored, shown to staff). Never the address itself."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit


def recipient_hash(salt: str, channel: str, address: str) -> str:
    normalised = address.strip().lower() if channel == "email" else address.strip()
    return hashlib.sha256(f"{salt}\x00{channel}\x00{normalised}".encode()).hexdigest()


def mask(channel: str, address: str) -> str:
    """``t***@example.jp``, ``+81*******34``, ``https://hooks.example.org/…``."""
    a = address.strip()
    if channel == "email":
        local, _, domain = a.partition("@")
        return f"{local[:1]}***@{domain}"
    if channel == "sms":
        return a[:3] + "*" * max(len(a) - 5, 0) + a[-2:]
    parts = urlsplit(a)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


@dataclass(frozen=True)
class Recipient:
    """One address on one channel. ``repr`` hides the address."""

    channel: str  # email | sms | webhook
    address: str = field(repr=False)
    lang: str = "ja"
    audience: str = "staff"  # staff | resident
    group: str | None = None
    subscription_id: int | None = None
    unsubscribe_url: str | None = field(default=None, repr=False)

    def key(self, salt: str) -> str:
        return recipient_hash(salt, self.channel, self.address)

    @property
    def masked(self) -> str:
        return mask(self.channel, self.address)
