"""Property-based requests from the OpenAPI document: no operation answers 5xx.

schemathesis generates valid and invalid requests for every operation of the app
(this API's and the routers other packages contribute); they go through Starlette's
test client as an admin, so every operation is reached past auth, against a service
holding a little data: a registered flood sensor with readings and an open alert.
Examples are bounded per operation and mode so the run takes seconds.

(Requests are sent with our own client because schemathesis' requests transport
breaks on the urllib3-future package some dependencies pull in.)
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from cloud.api.app import create_app
from cloud.api.auth import Role, create_token
from tests.cloud.api.conftest import make_service
from tests.cloud.api.data import seed_flood_device

# The schema is needed at collection time (one test per operation), so the service lives
# in a temp dir made at import and removed after the module.
_TMP = Path(tempfile.mkdtemp(prefix="akita-fuzz-"))
_SERVICE = make_service(_TMP)
seed_flood_device(_SERVICE, "fl-st-1", datetime.now(UTC) - timedelta(minutes=30))
_TOKEN = create_token(_SERVICE.sessionmaker, name="fuzz-admin", role=Role.ADMIN)
_APP = create_app(_SERVICE)
_SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", _APP)
_OPERATIONS = {
    f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in _SCHEMA.get_all_operations())
}


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    _SERVICE.stop()
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(_APP, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", sorted(_OPERATIONS))
def test_no_server_errors(label: str, mode: GenerationMode, client: TestClient) -> None:
    operation = _OPERATIONS[label]
    seen: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=8,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:  # type: ignore[no-untyped-def]
        if case.path == "/tokens/{token_id}" and case.method == "DELETE":
            case.path_parameters = {"token_id": 999_999}  # keep the fuzzer's own token
        kwargs = case.as_transport_kwargs(
            base_url="http://testserver", headers={"Authorization": f"Bearer {_TOKEN}"}
        )
        kwargs.pop("cookies", None)
        if "data" in kwargs:  # httpx wants raw bytes/text as content=
            kwargs["content"] = kwargs.pop("data")
        response = client.request(**kwargs)
        seen.append(response.status_code)
        assert response.status_code < 500, (
            f"{label} answered {response.status_code}: {response.text[:500]}\n"
            f"{case.as_curl_command()}"
        )

    try:
        run()
    except Unsatisfiable:
        if mode == GenerationMode.NEGATIVE:
            return  # every input of this operation is valid: nothing to negate
        raise
    assert seen, f"no request generated for {label}"
