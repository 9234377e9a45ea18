"""Every staff route: 401 without a token or with a bad one, 403 with too low a role.

Operations are enumerated from the app's OpenAPI document, so a route added later
(here or by another package's router) is covered without editing this test. Each role
is its own bearer security scheme, so the document says which role an operation needs.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.api.auth import Role, revoke_token
from cloud.service import CloudService
from tests.cloud.api.conftest import bearer

# The only operations of the staff API itself that answer without a token.
PUBLIC = {("get", "/health")}


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def _url(path: str, op: dict[str, Any]) -> str:
    def value(m: re.Match[str]) -> str:
        for p in op.get("parameters", []):
            if p["name"] == m.group(1) and p["schema"].get("type") == "integer":
                return "999999"  # no such row: the probe changes nothing
        return "x1"

    return re.sub(r"\{(\w+)\}", value, path)


def _role(op: dict[str, Any]) -> Role | None:
    schemes = {name for req in op.get("security", []) for name in req}
    roles = [Role(s) for s in schemes if s in Role.__members__.values()]
    return min(roles, key=lambda r: r.rank) if roles else None


def test_every_own_operation_but_health_needs_a_role(service: CloudService) -> None:
    spec = create_app(service, extra_routers=[]).openapi()
    unprotected = {(m, p) for m, p, op in _operations(spec) if _role(op) is None}
    assert unprotected == PUBLIC
    assert len(_operations(spec)) >= 19


def test_401_without_or_with_bad_token_and_403_below_role(
    client: TestClient, tokens: dict[Role, str], service: CloudService
) -> None:
    revoked = tokens[Role.ADMIN]
    from cloud.api.auth import create_token, list_tokens

    admin = create_token(service.sessionmaker, name="still-admin", role=Role.ADMIN)
    [revoked_info] = [t for t in list_tokens(service.sessionmaker) if t.name == "t-admin"]
    revoke_token(service.sessionmaker, revoked_info.id, actor="test")

    problems: list[str] = []
    checked = 0
    for method, path, op in _operations(client.app.openapi()):  # type: ignore[attr-defined]
        role = _role(op)
        if role is None:
            continue
        checked += 1
        url = _url(path, op)
        kwargs: dict[str, Any] = {"json": {}} if "requestBody" in op else {}
        attempts: list[tuple[str, dict[str, str], int]] = [
            ("no token", {}, 401),
            ("bad token", bearer("akt_not-a-token"), 401),
            ("not bearer", {"Authorization": f"Basic {tokens[Role.VIEWER]}"}, 401),
            ("revoked", bearer(revoked), 401),
        ]
        attempts += [
            (f"{low.value} token", bearer(tokens[low]), 403) for low in Role if low.rank < role.rank
        ]
        for label, headers, expected in attempts:
            r = client.request(method.upper(), url, headers=headers, **kwargs)
            if r.status_code != expected:
                problems.append(f"{method.upper()} {url} {label}: {r.status_code} != {expected}")
            elif expected == 401 and r.headers.get("www-authenticate") != "Bearer":
                problems.append(f"{method.upper()} {url} {label}: no WWW-Authenticate")
        ok = admin if role == Role.ADMIN else tokens[role]
        r = client.request(method.upper(), url, headers=bearer(ok), **kwargs)
        if r.status_code in (401, 403):
            problems.append(f"{method.upper()} {url} {role.value} token refused: {r.status_code}")
    assert checked >= 18
    assert problems == [], "\n".join(problems)


def test_health_is_public_and_shows_no_secrets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.cloud.api.conftest import make_service

    svc = make_service(
        tmp_path,
        smtp={"host": "127.0.0.1", "port": 2525, "username": "u", "password": "s3cr3t-pw"},
    )
    try:
        with TestClient(create_app(svc, extra_routers=[])) as client:
            r = client.get("/health")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "ok" and body["store"]["ok"] is True
        assert body["broker"]["ok"] is None  # no ingest running in this process
        assert "s3cr3t-pw" not in r.text and "akita.db" not in r.text
    finally:
        svc.stop()


def test_metrics_needs_viewer_unless_public(
    tmp_path, client: TestClient, tokens: dict[Role, str]
) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/metrics").status_code == 401
    r = client.get("/metrics", headers=bearer(tokens[Role.VIEWER]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "# TYPE akita_ingest_dead_letters_total counter" in r.text
    from tests.cloud.api.conftest import make_service

    svc = make_service(tmp_path / "public", api={"metrics_public": True})
    try:
        with TestClient(create_app(svc, extra_routers=[])) as c:
            assert c.get("/metrics").status_code == 200
    finally:
        svc.stop()


def test_token_admin_routes(client: TestClient, tokens: dict[Role, str]) -> None:
    admin = bearer(tokens[Role.ADMIN])
    r = client.post("/tokens", json={"name": "ops-ito", "role": "operator"}, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["token"].startswith("akt_") and created["role"] == "operator"
    # the new secret works, with its role
    assert client.get("/alerts", headers=bearer(created["token"])).status_code == 200
    assert client.get("/tokens", headers=bearer(created["token"])).status_code == 403
    listed = client.get("/tokens", headers=admin).json()
    assert "token" not in listed[0] and {t["name"] for t in listed} >= {"ops-ito", "t-admin"}
    dup = client.post("/tokens", json={"name": "ops-ito", "role": "viewer"}, headers=admin)
    assert dup.status_code == 409
    bad = client.post("/tokens", json={"name": "x", "role": "boss"}, headers=admin)
    assert bad.status_code == 422 and "role" in bad.text
    r = client.delete(f"/tokens/{created['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert client.get("/alerts", headers=bearer(created["token"])).status_code == 401
