"""The notification channels, declared once.

:data:`SPECS` names every channel and says how its addresses are normalised (for the
recipient hash) and masked (for records and the staff UI); the settings
(:class:`cloud.notify.config.Member`), the recipients and the delivery records read it
from here. A configured channel object (:class:`Channel`) has a ``name`` from
:data:`SPECS` and a ``deliver`` method; :class:`Channels` is the dispatcher's registry
of them, so adding a channel adds no branch anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from cloud.notify.errors import NotifyError
from cloud.notify.messages import Message
from schemas.alert import Alert


@dataclass(frozen=True)
class Envelope:
    """What a channel may need beyond the rendered message."""

    alert: Alert
    action: str
    stage: str | None
    lang: str = "ja"


class Channel(Protocol):
    @property
    def name(self) -> str: ...

    def deliver(self, address: str, message: Message, envelope: Envelope) -> None:
        """Send one message; raise :class:`NotifyError` (``retryable`` set) on failure."""


def _any_address(address: str) -> str | None:
    return None


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    label: str  # for people (console, docs)
    normalise: Callable[[str], str]
    mask: Callable[[str], str]
    check: Callable[[str], str | None] = _any_address  # what is wrong with an address


NOTICE_SCOPES = ("device", "district", "area")


def check_notice_address(address: str) -> str | None:
    """``device:<id>``, ``district:<name>``, ``area:<name>`` or ``all``."""
    scope, sep, value = address.strip().partition(":")
    if address.strip() == "all" or (sep and scope in NOTICE_SCOPES and value.strip()):
        return None
    return f"{address!r} is not device:<id>, district:<name>, area:<name> or all"


def _mask_email(address: str) -> str:
    local, _, domain = address.strip().partition("@")
    return f"{local[:1]}***@{domain}"


def _mask_phone(address: str) -> str:
    a = address.strip()
    return a[:3] + "*" * max(len(a) - 5, 0) + a[-2:]


def _mask_url(address: str) -> str:
    parts = urlsplit(address.strip())
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def _mask_notice(address: str) -> str:
    # a district or area is not personal; one unit's id stands for a resident's home
    scope, _, value = address.strip().partition(":")
    return f"device:{value[:3]}***" if scope == "device" else address.strip()


SPECS: dict[str, ChannelSpec] = {
    spec.name: spec
    for spec in (
        ChannelSpec("email", "e-mail", lambda a: a.strip().lower(), _mask_email),
        ChannelSpec("sms", "SMS", str.strip, _mask_phone),
        ChannelSpec("webhook", "webhook", str.strip, _mask_url),
        ChannelSpec("notice", "call-unit notice", str.strip, _mask_notice, check_notice_address),
    )
}
CHANNEL_NAMES = tuple(SPECS)


def spec(name: str) -> ChannelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"channel {name!r} is not one of {', '.join(CHANNEL_NAMES)}") from None


def known_channel(name: str) -> str:
    """Pydantic validator of a channel name."""
    return spec(name).name


class Channels:
    """The configured channel objects, by name."""

    def __init__(self, channels: Iterable[Channel | None] = ()) -> None:
        self._by_name: dict[str, Channel] = {}
        for channel in channels:
            if channel is not None:
                self.add(channel)

    def add(self, channel: Channel) -> None:
        spec(channel.name)  # only declared channels
        self._by_name[channel.name] = channel

    def get(self, name: str) -> Channel | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def deliver(self, channel: str, address: str, message: Message, envelope: Envelope) -> None:
        found = self._by_name.get(channel)
        if found is None:
            raise NotifyError(f"channel {channel} is not configured", retryable=False)
        found.deliver(address, message, envelope)
