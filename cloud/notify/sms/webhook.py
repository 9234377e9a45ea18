"""Generic JSON-webhook SMS provider: ``POST url`` with ``{"to", "from", "body"}``.

Fits gateways that take a JSON body (many in-house and carrier gateways, or a relay
service). A bearer token is sent when ``password`` is set.
"""

from __future__ import annotations

import httpx

from cloud.notify.sms.base import SmsSettings, post


class JsonWebhookSms:
    name = "webhook"

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings
        headers = {"Authorization": f"Bearer {settings.password}"} if settings.password else {}
        self._client = httpx.Client(timeout=settings.timeout_s, headers=headers)

    def send(self, to: str, body: str) -> None:
        payload = {"to": to, "from": self.settings.sender, "body": body}
        post(self.name, self._client, self.settings.url, json=payload)

    def close(self) -> None:
        self._client.close()
