"""Real peers for the notification tests: an aiosmtpd SMTP server on loopback (STARTTLS
with a throw-away self-signed certificate, AUTH required) and an HTTP SMS/webhook sink
(http.server in a thread) that records every request. Both on free ports, both stopped.
"""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from sqlalchemy.orm import sessionmaker

from cloud.db.base import create_all, make_engine, make_sessionmaker
from cloud.db.notify import create_tables
from cloud.notify.email import SmtpSettings
from tests.servers import free_port

SMTP_USER, SMTP_PASSWORD = "akita-relay", "relay-secret-for-tests"


@dataclass
class Received:
    envelope_from: str
    rcpt: list[str]
    message: EmailMessage
    accepted_at: float  # time.monotonic() when the server accepted DATA
    tls: bool
    authenticated: bool


@dataclass
class SmtpSink:
    port: int
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settings(self, **overrides: Any) -> SmtpSettings:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "starttls": True,
            "sender": "alerts@city.akita.example",
            "verify_tls": False,  # the test certificate is self-signed
            "timeout_s": 5.0,
        }
        values.update(overrides)
        return SmtpSettings(**values)

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address in m.rcpt]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.sink.lock:
            self.sink.messages.append(
                Received(
                    envelope_from=str(envelope.mail_from),
                    rcpt=list(envelope.rcpt_tos),
                    message=msg,
                    accepted_at=time.monotonic(),
                    tls=session.ssl is not None,
                    authenticated=bool(session.authenticated),
                )
            )
        return "250 OK"


def _authenticator(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == SMTP_USER
        and auth_data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@pytest.fixture(scope="session")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    d = tmp_path_factory.mktemp("smtp-tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


@pytest.fixture
def smtp_server(tls_context: ssl.SSLContext) -> Iterator[SmtpSink]:
    """aiosmtpd on loopback: STARTTLS offered and required, AUTH required after TLS."""
    sink = SmtpSink(port=free_port())
    controller = Controller(
        _Handler(sink),
        hostname="127.0.0.1",
        port=sink.port,
        tls_context=tls_context,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpSink:
    """Records requests; answers ``statuses`` in turn (then 200/201) to simulate outages."""

    port: int
    requests: list[HttpRequest] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def snapshot(self) -> list[HttpRequest]:
        with self.lock:
            return list(self.requests)


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with sink.lock:
                sink.requests.append(
                    HttpRequest("POST", self.path, dict(self.headers.items()), body)
                )
                status = sink.statuses.pop(0) if sink.statuses else 201
            payload = b'{"sid": "SM0000", "status": "queued"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", sink.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def db(tmp_path: Path) -> sessionmaker:  # type: ignore[type-arg]
    engine = make_engine(f"sqlite:///{tmp_path / 'akita.db'}")
    create_all(engine)
    create_tables(engine)
    return make_sessionmaker(engine)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
