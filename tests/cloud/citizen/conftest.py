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

from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.db.citizen import create_tables
from cloud.notify.email import EmailChannel, SmtpSettings
from cloud.store.sqlite.store import SqliteStore
from tests.servers import free_port


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
    host: str
    port: int
    mailbox: Mailbox


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Smtp("127.0.0.1", port, mailbox)
    finally:
        controller.stop()


@dataclass
class Citizen:
    app: FastAPI
    client: TestClient
    sm: sessionmaker[Session]
    store: SqliteStore
    mailbox: Mailbox
    db_url: str


def build_app(sm: sessionmaker[Session], store: Any, mail: EmailChannel | None) -> FastAPI:
    """The citizen and staff routers on an app whose ``state.service`` has the
    CloudService shape the routers use."""
    from cloud.citizen.routes import router as html_router

    app = FastAPI()
    app.state.service = SimpleNamespace(
        sessionmaker=sm, store=store, email=mail, settings=None, alerts=None, notifier=None
    )
    app.include_router(html_router)
    return app


@pytest.fixture
def citizen(tmp_path: Path, smtp: Smtp) -> Iterator[Citizen]:
    db_url = f"sqlite:///{tmp_path / 'akita.db'}"
    engine = make_engine(db_url)
    create_all(engine)
    create_tables(engine)
    sm = make_sessionmaker(engine)
    store = SqliteStore(tmp_path / "telemetry.db")
    mail = EmailChannel(SmtpSettings(host=smtp.host, port=smtp.port, sender="bousai@city.test"))
    app = build_app(sm, store, mail)
    with TestClient(app) as client:
        yield Citizen(app, client, sm, store, smtp.mailbox, db_url)
    store.close()
    engine.dispose()


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
