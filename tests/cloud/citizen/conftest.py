"""Fixtures for the citizen module: a real SMTP server (aiosmtpd on loopback) as the mail
server, a SQLite database and time-series store in a temp dir, and the FastAPI app."""

from __future__ import annotations

import email
import email.policy
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from cloud.api.app import create_app
from cloud.api.auth import create_token
from cloud.service import CloudService
from cloud.settings import CloudSettings
from cloud.store.base import TimeSeriesStore
from tests.servers import free_port

PUBLIC_URL = "https://bousai.city.test"


@dataclass
class Mailbox:
    """Messages the SMTP server accepted, in order."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(msg)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def text(msg: EmailMessage) -> str:
        part = msg.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())

    def confirmation_link(self, address: str) -> str:
        (msg,) = self.to(address)
        match = re.search(r"https?://\S+/confirm", self.text(msg))
        assert match, self.text(msg)
        return match.group(0)


@dataclass
class Smtp:
    """A running aiosmtpd server; ``stop()`` takes it down (idempotent)."""

    host: str
    port: int
    mailbox: Mailbox
    controller: Controller
    running: bool = True

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    server = Smtp("127.0.0.1", port, mailbox, controller)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Citizen:
    app: FastAPI
    client: TestClient
    service: CloudService
    sm: sessionmaker[Session]
    store: TimeSeriesStore
    mailbox: Mailbox
    smtp: Smtp


def make_service(directory: Path, smtp: Smtp, **sections: Any) -> CloudService:
    """The real cloud service (SQLite database and store in ``directory``) with e-mail
    going to the test SMTP server; ``sections`` adds settings sections (e.g. ``sms``).
    Not started: no MQTT ingest or tick thread needed."""
    settings = CloudSettings.from_mapping(
        {
            "environment": "test",
            "store": {"url": f"sqlite:///{directory / 'telemetry.db'}"},
            "database": {"url": f"sqlite:///{directory / 'akita.db'}"},
            "smtp": {"host": smtp.host, "port": smtp.port, "sender": "bousai@city.test"},
            # links in messages come from here, never from the request's Host header
            "api": {"public_url": PUBLIC_URL},
            **sections,
        }
    )
    return CloudService(settings)


@pytest.fixture
def service_factory() -> Any:
    """:func:`make_service`, for tests that run the app under their own server."""
    return make_service


@pytest.fixture
def citizen(tmp_path: Path, smtp: Smtp) -> Iterator[Citizen]:
    service = make_service(tmp_path, smtp)
    app = create_app(service)
    try:
        with TestClient(app) as client:
            yield Citizen(
                app, client, service, service.sessionmaker, service.store, smtp.mailbox, smtp
            )
    finally:
        service.stop()


def staff_headers(service: CloudService, role: str, name: str | None = None) -> dict[str, str]:
    secret = create_token(service.sessionmaker, name=name or f"{role}-test", role=role)
    return {"Authorization": f"Bearer {secret}"}


def jpeg_with_gps(lat: float, lon: float, *, size: tuple[int, int] = (320, 240)) -> bytes:
    """A real JPEG whose EXIF GPS IFD holds ``lat``/``lon`` (northern/eastern hemisphere)."""

    def dms(x: float) -> tuple[float, float, float]:
        d = int(x)
        m = int((x - d) * 60)
        s = round(((x - d) * 60 - m) * 60, 4)
        return (float(d), float(m), s)

    img = Image.new("RGB", size, (90, 110, 130))
    for x in range(0, size[0], 16):  # some structure so it is not a flat colour
        for y in range(size[1]):
            img.putpixel((x, y), (200, 180, 40))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: dms(lat), 3: "E", 4: dms(lon)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=85)
    return buf.getvalue()


def image_bytes(fmt: str, size: tuple[int, int] = (32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 30)).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def images() -> SimpleNamespace:
    """Image factories: ``images.jpeg_with_gps(lat, lon)``, ``images.encode(fmt)``."""
    return SimpleNamespace(jpeg_with_gps=jpeg_with_gps, encode=image_bytes)


@pytest.fixture
def staff(citizen: Citizen) -> SimpleNamespace:
    """Bearer headers for a viewer and an operator token on the citizen app's service."""
    return SimpleNamespace(
        viewer=staff_headers(citizen.service, "viewer"),
        operator=staff_headers(citizen.service, "operator"),
    )


@dataclass
class Live:
    """The citizen app under a real uvicorn server on loopback."""

    url: str
    port: int
    service: CloudService
    mailbox: Mailbox


@pytest.fixture
def live(tmp_path: Path, smtp: Smtp) -> Iterator[Live]:
    import uvicorn

    from tests.servers import wait_port

    service = make_service(tmp_path, smtp)
    port = free_port()
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-citizen-live", daemon=True)
    thread.start()
    try:
        wait_port(port)
        yield Live(f"http://127.0.0.1:{port}", port, service, smtp.mailbox)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        service.stop()
