"""The SMS provider interface and the channel that wraps a provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import httpx

from cloud.notify.errors import NotifyConfigError, NotifyError

if TYPE_CHECKING:
    from cloud.notify.channels import Envelope
    from cloud.notify.messages import Message

# one SMS segment of UCS-2 text is 70 characters; gateways concatenate up to a few
MAX_SMS_CHARS = 335


class SmsProvider(Protocol):
    """Sends one text to one E.164 number; raises :class:`NotifyError` on failure."""

    name: str

    def send(self, to: str, body: str) -> None: ...


@dataclass(frozen=True)
class SmsSettings:
    """``provider`` is ``webhook`` (generic JSON POST to ``url``) or ``twilio``
    (``base_url`` + account ``username`` = SID, ``password`` = auth token)."""

    provider: Literal["webhook", "twilio"]
    url: str = ""
    sender: str = ""
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0

    def __repr__(self) -> str:
        return f"SmsSettings(provider={self.provider!r}, url={self.url!r}, sender={self.sender!r})"


def raise_for_http(provider: str, response: httpx.Response) -> None:
    """Map an HTTP answer to success or a :class:`NotifyError` (5xx and 429 retryable)."""
    code = response.status_code
    if 200 <= code < 300:
        return
    raise NotifyError(
        f"sms gateway refused provider={provider} status={code}",
        retryable=code >= 500 or code in (408, 429),
    )


def post(provider: str, client: httpx.Client, url: str, **kwargs: object) -> None:
    try:
        response = client.post(url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise NotifyError(
            f"sms gateway unreachable provider={provider} reason={type(exc).__name__}"
        ) from exc
    raise_for_http(provider, response)


def create_provider(settings: SmsSettings) -> SmsProvider:
    if settings.provider == "webhook":
        from cloud.notify.sms.webhook import JsonWebhookSms

        return JsonWebhookSms(settings)
    if settings.provider == "twilio":
        from cloud.notify.sms.twilio import TwilioSms

        return TwilioSms(settings)
    raise NotifyConfigError(f"sms.provider={settings.provider!r} is not one of 'webhook', 'twilio'")


class SmsChannel:
    """The channel the dispatcher uses: truncates over-long texts, then hands to the
    provider."""

    name = "sms"

    def __init__(self, provider: SmsProvider) -> None:
        self.provider = provider

    def deliver(self, address: str, message: Message, envelope: Envelope) -> None:
        """The dispatcher's call (:class:`cloud.notify.channels.Channel`)."""
        self.send(address, message.sms)

    def send(self, to: str, body: str) -> None:
        if len(body) > MAX_SMS_CHARS:
            body = body[: MAX_SMS_CHARS - 1] + "…"
        self.provider.send(to, body)
