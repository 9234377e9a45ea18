"""Tokens never reach the logs: ``akita cloud run`` (real uvicorn, the CLI's own logging
set-up) serves requests carrying a bearer token, tokens in query strings and a
subscriber's capability link; its stderr is searched for every secret afterwards."""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys
from pathlib import Path

import httpx

from cloud.api.access_log import REDACTED, redact_target
from cloud.api.auth import Role, create_token
from tests.cloud.api.conftest import make_service
from tests.servers import _stop, free_port, wait_port


def test_redact_target_rules() -> None:
    assert redact_target("/alerts?token=abc&limit=5") == f"/alerts?token={REDACTED}&limit=5"
    assert redact_target("/a?Access_Token=x&q=a+b") == f"/a?Access_Token={REDACTED}&q=a+b"
    assert (
        redact_target("http://h/send?apikey=s3&to=81") == f"http://h/send?apikey={REDACTED}&to=81"
    )
    sub = "/citizen/subscriptions/short/unsubscribe"
    assert redact_target(sub) == f"/citizen/subscriptions/{REDACTED}/unsubscribe"
    long_token = secrets.token_urlsafe(32)
    assert redact_target(f"/x/{long_token}/y") == f"/x/{REDACTED}/y"
    # ids operators need stay readable
    for kept in (
        "/alerts/al-0123456789abcdef0123",
        "/citizen/reports/AK-2026-000001",
        "/opendata/snowplows/cleared-segments.geojson",
        "/devices/fl-st-1?limit=10",
    ):
        assert redact_target(kept) == kept  # fmt: skip


def test_access_log_of_a_real_server_has_no_token(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    token = create_token(service.sessionmaker, name="log-test", role=Role.VIEWER)
    service.stop()
    config = tmp_path / "cloud.toml"
    config.write_text(
        'environment = "test"\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "telemetry.db"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "akita.db"}"\n',
        encoding="utf-8",
    )
    port = free_port()
    log_path = tmp_path / "stderr.log"
    query_secret = secrets.token_hex(8)  # short: only the parameter name gives it away
    cap_link = secrets.token_urlsafe(32)
    with log_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "akita", "cloud", "run", "--config", str(config),
             "--no-ingest", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        try:
            wait_port(port, timeout=60, proc=proc)
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base) as http:
                assert http.get("/alerts", headers={"Authorization": f"Bearer {token}"}).is_success
                basic = base64.b64encode(f"staff:{token}".encode()).decode()
                http.get("/docs", headers={"Authorization": f"Basic {basic}"})
                http.get(f"/alerts?token={query_secret}&limit=5")
                http.get(f"/health?access_token={query_secret}&api_key={query_secret}")
                http.get(f"/citizen/subscriptions/{cap_link}/unsubscribe")
                http.get(f"/citizen/subscriptions/{cap_link}")
        finally:
            _stop(proc)
    text = log_path.read_text(encoding="utf-8")
    assert "GET /alerts?token=REDACTED&limit=5" in text, text
    assert "GET /health?access_token=REDACTED&api_key=REDACTED" in text, text
    assert "GET /citizen/subscriptions/REDACTED/unsubscribe" in text, text
    for secret in (token, query_secret, cap_link, token.removeprefix("akt_")):
        assert secret not in text, f"secret in the log:\n{text}"
    assert "authorization" not in text.lower()
