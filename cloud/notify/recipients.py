"""Recipients and how they appear outside the send call: a salted hash (stored, logged
as a prefix) and a masked form (stored, shown to staff). Never the address itself."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cloud.notify.channels import spec


def recipient_hash(salt: str, channel: str, address: str) -> str:
    normalised = spec(channel).normalise(address)
    return hashlib.sha256(f"{salt}\x00{channel}\x00{normalised}".encode()).hexdigest()


def mask(channel: str, address: str) -> str:
    """``t***@example.jp``, ``+81*******34``, ``https://hooks.example.org/…`` (each
    channel's own rule, :data:`cloud.notify.channels.SPECS`)."""
    return spec(channel).mask(address)


@dataclass(frozen=True)
class Recipient:
    """One address on one channel. ``repr`` hides the address."""

    channel: str  # a name in cloud.notify.channels.SPECS
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
