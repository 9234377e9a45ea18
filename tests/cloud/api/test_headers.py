"""Security headers on every response, HSTS only behind TLS, the citizen pages' inline
styles allowed by hash (and nothing inline that the policy would block), and the API
documentation open in development, staff-only in production."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.api.auth import Role, create_token
from cloud.api.headers import inline_hashes
from cloud.service import CloudService
from tests.cloud.api.conftest import bearer, make_service

DOCS = ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect")
CITIZEN_PAGES = ("/citizen/", "/citizen/subscribe", "/citizen/reports/new", "/citizen/flood",
                 "/citizen/procedures", "/citizen/reports")  # fmt: skip


def _client(service: CloudService, base_url: str = "http://testserver") -> TestClient:
    return TestClient(create_app(service), base_url=base_url)


@pytest.fixture
def prod(tmp_path: Path) -> Iterator[CloudService]:
    svc = make_service(
        tmp_path, environment="production", api={"public_url": "https://bousai.city.akita.jp"}
    )
    yield svc
    svc.stop()


def test_every_response_carries_the_headers(client: TestClient) -> None:
    for path in ("/health", "/alerts", "/opendata/", "/citizen/", "/nope", "/docs"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, path
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in r.headers, "HSTS on plain HTTP"
    api_csp = client.get("/health").headers["content-security-policy"]
    assert "unsafe-inline" not in api_csp and "script-src 'self'" in api_csp


def test_hsts_only_over_tls_or_from_a_trusted_proxy(tmp_path: Path) -> None:
    svc = make_service(tmp_path, api={"trusted_proxies": ["testclient"]})
    try:
        with _client(svc, "https://testserver") as tls:
            assert "max-age=" in tls.get("/health").headers["strict-transport-security"]
        with _client(svc) as plain:
            fwd = plain.get("/health", headers={"X-Forwarded-Proto": "https"})
            assert "max-age=" in fwd.headers["strict-transport-security"]
            http = plain.get("/health", headers={"X-Forwarded-Proto": "http"})
            assert "strict-transport-security" not in http.headers
    finally:
        svc.stop()
    untrusted = make_service(tmp_path / "u")
    try:
        with _client(untrusted) as plain:
            r = plain.get("/health", headers={"X-Forwarded-Proto": "https"})
            assert "strict-transport-security" not in r.headers
    finally:
        untrusted.stop()


def test_citizen_pages_inline_styles_are_allowed_by_hash_and_nothing_else_is_inline(
    client: TestClient,
) -> None:
    for path in CITIZEN_PAGES:
        r = client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        style_src = re.search(r"style-src ([^;]*)", csp)
        assert style_src is not None
        hashes = inline_hashes(r.text)
        assert hashes, f"{path}: expected the shared <style> block"
        for h in hashes:
            assert h in style_src.group(1).split(), f"{path}: inline block {h} not allowed"
        assert "<script" not in r.text.lower(), f"{path}: inline or external script"
        # inline attributes would need 'unsafe-inline' / 'unsafe-hashes'
        assert not re.search(r"\sstyle=|\son[a-z]+=|javascript:", r.text, re.I), path


def test_docs_are_open_in_development(client: TestClient) -> None:
    for path in DOCS:
        assert client.get(path).status_code == 200, path
    csp = client.get("/docs").headers["content-security-policy"]
    [inline] = inline_hashes(client.get("/docs").text)
    assert inline in csp and "https://cdn.jsdelivr.net" in csp
    assert "frame-ancestors 'none'" in csp


def test_docs_need_a_staff_token_in_production(prod: CloudService) -> None:
    token = create_token(prod.sessionmaker, name="viewer", role=Role.VIEWER)
    basic = base64.b64encode(f"anyone:{token}".encode()).decode()
    with _client(prod) as c:
        for path in DOCS:
            r = c.get(path)
            assert r.status_code == 401, path
            assert "Basic" in r.headers["www-authenticate"]
            assert "staff token" in r.json()["detail"]
            assert c.get(path, headers=bearer("akt_wrong")).status_code == 401
            assert c.get(path, headers={"Authorization": "Basic !!"}).status_code == 401
            assert c.get(path, headers=bearer(token)).status_code == 200, path
            ok = c.get(path, headers={"Authorization": f"Basic {basic}"})
            assert ok.status_code == 200, path
        assert c.get("/openapi.json", headers=bearer(token)).json()["paths"]["/alerts"]
        # public pages stay public
        assert c.get("/health").status_code in (200, 503)
        assert c.get("/opendata/").status_code == 200
