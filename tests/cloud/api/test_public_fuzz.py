"""Random query strings and path values on every route that answers without a token:
never a 5xx. (schemathesis covers the documented parameters; this covers what the
OpenAPI document does not list, such as the citizen pages and unknown parameters.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.api.app import create_app
from tests.cloud.api.conftest import make_service

NAMES = st.sampled_from(["format", "since", "until", "limit", "token", "area", "page", "x"])
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1e400",
                     "-1", "NaN", "", "json", "pb", "%ff", "\x00"]),
)  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    service = make_service(Path(tmp_path_factory.mktemp("fuzz")))
    with TestClient(create_app(service), raise_server_exceptions=False) as c:
        yield c
    service.stop()


def _public_paths(client: TestClient) -> list[str]:
    out = []
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if "GET" in (route.methods or set()) and route.path is not None:
            probe = client.get(re.sub(r"\{[^}]+\}", "x", route.path))
            if probe.status_code not in (401, 403):
                out.append(route.path)
    return out


def test_public_routes_never_answer_5xx(client: TestClient) -> None:
    paths = _public_paths(client)
    assert "/opendata/gtfs-rt/vehicle-positions.pb" in paths and "/citizen/flood" in paths

    @given(
        path=st.sampled_from(paths),
        segment=st.text(min_size=1, max_size=60),
        query=st.lists(st.tuples(NAMES, VALUES), max_size=4),
    )
    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def run(path: str, segment: str, query: list[tuple[str, str]]) -> None:
        filled = re.sub(r"\{[^}]+\}", quote(segment, safe=""), path)
        qs = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query)
        r = client.get(f"{filled}?{qs}" if qs else filled)
        assert r.status_code < 500, f"GET {filled}?{qs} answered {r.status_code}: {r.text[:300]}"

    run()
