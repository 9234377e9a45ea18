"""Generic outgoing webhook: a JSON POST, optionally signed.

With a secret, the request carries ``X-Akita-Signature: sha256=<hex>``, the
HMAC-SHA256 of the exact body bytes, and ``X-Akita-Timestamp`` (Unix seconds,
included in the signed bytes as ``<timestamp>.<body>``) so a receiver can refuse
replays. The same scheme as GitHub/Stripe style signatures.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

import httpx

from cloud.notify.errors import NotifyError

if TYPE_CHECKING:
    from cloud.notify.channels import Envelope
    from cloud.notify.messages import Message

SIGNATURE_HEADER = "X-Akita-Signature"
TIMESTAMP_HEADER = "X-Akita-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Receiver side, used by tests and documented for integrators."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel:
    name = "webhook"

    def __init__(self, *, secret: str | None = None, timeout_s: float = 10.0) -> None:
        self._secret = secret
        self._client = httpx.Client(timeout=timeout_s)

    def deliver(self, address: str, message: Message, envelope: Envelope) -> None:
        """The dispatcher's call (:class:`cloud.notify.channels.Channel`)."""
        payload = {
            "action": envelope.action,
            "stage": envelope.stage,
            "alert": envelope.alert.model_dump(mode="json"),
            "subject": message.subject,
            "text": message.text,
        }
        self.send(address, payload)

    def send(self, url: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self._secret:
            ts = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = ts
            headers[SIGNATURE_HEADER] = sign(self._secret, ts, body)
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise NotifyError(f"webhook unreachable reason={type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise NotifyError(
                f"webhook refused status={response.status_code}",
                retryable=response.status_code >= 500 or response.status_code == 429,
            )

    def close(self) -> None:
        self._client.close()
