"""SMS subscriptions through the notify SMS channel, against a real HTTP server standing in
for the SMS gateway (the JSON-webhook provider)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud.api.app import create_app
from cloud.db.models import SubscriptionRow


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: object) -> None:  # keep phone numbers out of test logs
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sms", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_sms_subscription_gets_its_link_by_sms(
    tmp_path: Path, smtp, gateway, service_factory
) -> None:  # type: ignore[no-untyped-def]
    url, received = gateway
    service = service_factory(
        tmp_path,
        smtp,
        sms={"provider": "webhook", "url": url, "sender": "AKITA-CITY"},
        notify={
            "public_base_url": "https://bousai.city.test",
            "recipient_salt": "citizen-sms-test-5f0c9b2e",
        },
    )
    try:
        with TestClient(create_app(service)) as client:
            page = client.get("/citizen/subscribe").text
            assert "SMSは現在準備中" not in page
            r = client.post(
                "/citizen/subscribe",
                data={
                    "channel": "sms",
                    "address": "090-1234-5678",
                    "kinds": ["heat"],
                    "area": "御所野",
                    "consent": "yes",
                },
            )
            assert r.status_code == 200 and "SMSで送りました" in r.text
            (msg,) = received
            assert msg["to"] == "+819012345678" and msg["from"] == "AKITA-CITY"
            link = msg["body"].rsplit(" ", 1)[1]
            # the configured public URL is the base of links sent out
            assert link.startswith("https://bousai.city.test/citizen/subscriptions/")
            assert len(msg["body"]) <= 70 * 2  # fits in two UCS-2 segments
            path = link.removeprefix("https://bousai.city.test")
            assert client.post(path).status_code == 200
            with service.sessionmaker() as s:
                row = s.scalars(select(SubscriptionRow)).one()
                assert (row.channel, row.address) == ("sms", "+819012345678")
                assert row.confirmed_at is not None
            assert smtp.mailbox.messages == []
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("+44 7700 900123", "+447700900123"),  # abroad
        ("+1-900-555-0100", "+19005550100"),  # premium rate abroad
        ("+81 990-123-456", "+81990123456"),  # a Japanese premium-rate (Dial Q2) number
        ("+81-3-1234-5678", "+81312345678"),  # a Japanese landline cannot get SMS
    ],
)
def test_sms_only_to_mobile_numbers_of_allowed_countries(
    tmp_path: Path, smtp, gateway, service_factory, typed: str, shown: str | None
) -> None:  # type: ignore[no-untyped-def]
    url, received = gateway
    service = service_factory(
        tmp_path,
        smtp,
        sms={"provider": "webhook", "url": url},
        notify={"recipient_salt": "citizen-sms-test-5f0c9b2e"},
    )
    try:
        with TestClient(create_app(service)) as client:
            r = client.post(
                "/citizen/subscribe",
                data={
                    "channel": "sms",
                    "address": typed,
                    "kinds": ["flood"],
                    "area": "御所野",
                    "consent": "yes",
                },
            )
            assert r.status_code == 422
            assert 'id="err-channel"' not in r.text  # SMS is on: the number is what is refused
            error = r.text.split('id="err-address">', 1)[1].split("</p>", 1)[0]
            assert (shown or typed) in error
        assert received == []
        with service.sessionmaker() as s:
            assert s.scalars(select(SubscriptionRow)).first() is None
    finally:
        service.stop()


def test_allowed_countries_are_a_setting(tmp_path: Path, smtp, gateway, service_factory) -> None:  # type: ignore[no-untyped-def]
    url, received = gateway
    service = service_factory(
        tmp_path,
        smtp,
        sms={"provider": "webhook", "url": url},
        citizen={"sms_countries": ["+81", "+44"]},
        notify={"recipient_salt": "citizen-sms-test-5f0c9b2e"},
    )
    try:
        with TestClient(create_app(service)) as client:
            data = {"channel": "sms", "kinds": ["flood"], "area": "御所野", "consent": "yes"}
            r = client.post("/citizen/subscribe", data=data | {"address": "+44 7700 900123"})
            assert r.status_code == 200
            r = client.post("/citizen/subscribe", data=data | {"address": "+1 900 555 0100"})
            assert r.status_code == 422
        assert [m["to"] for m in received] == ["+447700900123"]
    finally:
        service.stop()
