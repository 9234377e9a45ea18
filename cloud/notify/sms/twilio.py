"""Provider with the REST shape of the Twilio Programmable Messaging API:
``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with a
form-encoded ``To``, ``From``, ``Body`` and HTTP basic auth (SID, auth token).

``base_url`` is configurable (``https://api.twilio.com`` in production) so tests
and compatible gateways can stand in.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from cloud.notify.errors import NotifyConfigError
from cloud.notify.sms.base import SmsSettings, post

DEFAULT_BASE_URL = "https://api.twilio.com"


class TwilioSms:
    name = "twilio"

    def __init__(self, settings: SmsSettings) -> None:
        if not settings.username or not settings.password:
            raise NotifyConfigError(
                "sms.username (account SID) and sms.password (auth token) are required "
                "for provider 'twilio'"
            )
        if not settings.sender:
            raise NotifyConfigError("sms.sender (the From number) is required for 'twilio'")
        self.settings = settings
        base = (settings.url or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{quote(settings.username, safe='')}/Messages.json"
        self._client = httpx.Client(
            timeout=settings.timeout_s, auth=(settings.username, settings.password)
        )

    def send(self, to: str, body: str) -> None:
        form = {"To": to, "From": self.settings.sender, "Body": body}
        post(self.name, self._client, self.url, data=form)

    def close(self) -> None:
        self._client.close()
