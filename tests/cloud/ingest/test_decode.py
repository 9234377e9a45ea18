"""The msgspec fast path accepts only what the pydantic wire models accept, with equal values.

``cloud.ingest.decode`` derives its structs from ``schemas``; these tests hold it to
them: a payload the fast decoder takes must validate with pydantic to the same readings,
and what the edge actually sends must take the fast path (or the speed-up is fiction).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from cloud.ingest.decode import FastBatch, decode_fast, mirrored
from cloud.ingest.encode import FORMATS
from schemas import Batch, DeviceKind, encode_batch, values_model
from schemas.wire import DeviceStatus, reading_adapter


def _pydantic(payload: bytes) -> Batch | None:
    try:
        return Batch.model_validate_json(payload, strict=True)
    except ValidationError:
        return None


def _ms(ts: datetime) -> int:
    return int(ts.timestamp()) * 1000 + ts.microsecond // 1000


def _summary(batch: Any) -> tuple[Any, ...]:
    """What the ingest stores and checks, comparable across both decoders."""
    readings = tuple(
        (r.device_id, r.kind, _ms(r.ts), r.ts.microsecond, FORMATS[r.kind].fields(r.values))
        for r in batch.readings
    )
    statuses = tuple((s.device_id, _ms(s.ts), str(s.state.value), s.reason) for s in batch.statuses)
    return (batch.v, batch.gateway_id, batch.seq, _ms(batch.sent_at), readings, statuses)


def test_every_wire_model_of_a_batch_is_mirrored_field_for_field() -> None:
    structs = mirrored()
    kinds = {values_model(k) for k in DeviceKind}
    assert structs[Batch] is FastBatch
    assert kinds <= set(structs)
    assert DeviceStatus in structs
    for model, struct in structs.items():
        tag = struct.__struct_config__.tag_field
        expected = [n for n in model.model_fields if n != tag]
        assert sorted(struct.__struct_fields__) == sorted(expected), model.__name__


def test_a_schema_feature_the_fast_path_cannot_mirror_fails_at_import() -> None:
    from pydantic import Field, field_validator

    from cloud.ingest.decode import _Deriver

    class Odd(BaseModel):
        model_config = {"extra": "forbid"}
        x: float = Field(multiple_of=0.5)

    class Validated(BaseModel):
        model_config = {"extra": "forbid"}
        x: float

        @field_validator("x")
        @classmethod
        def _check(cls, v: float) -> float:
            return v

    with pytest.raises(TypeError, match=r"Odd\.x"):
        _Deriver().struct(Odd)
    # a Python field validator is invisible in the field metadata: mirrored models have none
    for model in mirrored():
        assert not model.__pydantic_decorators__.field_validators, model.__name__
        assert not model.__pydantic_decorators__.model_validators, model.__name__
    assert Validated.__pydantic_decorators__.field_validators  # the check above can fire


# --- what the edge sends takes the fast path -----------------------------------------

_T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@st.composite
def valid_batches(draw: st.DrawFn) -> Batch:
    readings = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(list(DeviceKind)))
        model = values_model(kind)
        values = draw(st.builds(model))
        ts = _T0 + timedelta(microseconds=draw(st.integers(0, 10**11)))
        readings.append(
            reading_adapter.validate_python(
                {"device_id": f"d-{i}", "kind": kind.value, "ts": ts, "values": values}
            )
        )
    return Batch(gateway_id="gw-1", seq=draw(st.integers(0, 2**40)), sent_at=_T0, readings=readings)


@given(valid_batches())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_what_the_edge_encodes_takes_the_fast_path_with_the_same_values(batch: Batch) -> None:
    payload = encode_batch(batch)
    fast = decode_fast(payload)
    assert fast is not None, payload[:300]
    assert _summary(fast) == _summary(batch)


# --- whatever the fast path accepts, pydantic accepts the same ----------------------

_TIMES = [
    "2026-11-27T23:00:00Z",
    "2026-11-27T23:00:00.5Z",
    "2026-11-27T23:00:00.123456789Z",
    "2026-11-27T23:00:00+09:00",
    "2026-11-27T23:00:00-00:00",
    "2026-11-27T23:00:00z",
    "2026-11-27t23:00:00Z",
    "2026-11-27 23:00:00Z",
    "2026-11-27T23:00:00",
    "2026-11-27T23:00Z",
    "2026-11-27",
    "2026-11-27T24:00:00Z",
    "2026-11-27T23:59:60Z",
    "0001-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-27T23:00:00+24:00",
    "2026-11-27T23:00:00.Z",
    "20261127T230000Z",
    1764284400,
    1764284400.5,
    None,
]
_IDS = ["d-1", "D_2.x", "a" * 64, "a" * 65, "", "-x", "d 1", "d\n", "d\u00e9", "d/1", "d+1", 7]
_ODD = st.one_of(
    st.sampled_from(_TIMES),
    st.sampled_from(_IDS),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -0.0, 1e12, 1e12 + 1, 2.5, 2.5000001, -0.1, -0.10000001, 360, 1e400]),
    st.sampled_from(["lamp", "ONLINE", "Bus", "1.0", "true", "", "x" * 65, "x" * 501]),
    st.booleans(),
    st.none(),
    st.just([]),
    st.just({}),
)


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON document (objects and list items)."""
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    out = []
    for key, value in items:
        out.append((*path, key))
        out.extend(_leaves(value, (*path, key)))
    return out


@st.composite
def odd_payloads(draw: st.DrawFn) -> bytes:
    """A valid batch with zero to two mutations: a leaf replaced, a key dropped or added,
    a key repeated, the bytes cut or made non-UTF-8."""
    batch = draw(valid_batches())
    statuses = [
        {"device_id": "d-9", "ts": "2026-11-27T23:00:00Z", "state": "offline", "reason": "timeout"}
    ] * draw(st.integers(0, 1))
    doc = batch.model_dump(mode="json", exclude_none=True) | {"statuses": statuses}
    for _ in range(draw(st.integers(0, 2))):
        paths = _leaves(doc)
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(_ODD)
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent["unknown"] = 1.0
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    tweak = draw(st.integers(0, 12))
    if tweak == 0:
        text = text.replace('"seq": ', '"seq": 1, "seq": ', 1)  # a repeated key
    elif tweak == 1:
        return text.encode()[: draw(st.integers(0, len(text)))]
    elif tweak == 2:
        return text.encode().replace(b"gw-1", b"gw-\xff", 1)
    return text.encode()


@given(odd_payloads())
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_path_never_accepts_what_pydantic_refuses(payload: bytes) -> None:
    fast = decode_fast(payload)
    if fast is None:
        return
    slow = _pydantic(payload)
    assert slow is not None, f"fast path accepted what pydantic refuses: {payload[:400]!r}"
    assert _summary(fast) == _summary(slow)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("device_id", "d\n"),
        ("device_id", "a" * 65),
        ("ts", "2026-11-27T23:00:00"),
        ("kind", "lamp"),
    ],
)
def test_hand_made_near_misses_are_left_to_pydantic(field: str, bad: str) -> None:
    good = {
        "device_id": "d-1",
        "kind": "water_block",
        "ts": "2026-11-27T23:00:00Z",
        "values": {"flow": 1.0},
    }
    doc = {"gateway_id": "gw-1", "seq": 1, "sent_at": "2026-11-27T23:00:00Z"}
    assert decode_fast(json.dumps(doc | {"readings": [good]}).encode()) is not None
    payload = json.dumps(doc | {"readings": [good | {field: bad}]}).encode()
    assert decode_fast(payload) is None
    assert _pydantic(payload) is None


def test_a_repeated_id_is_checked_once_and_a_bad_one_never_cached() -> None:
    doc = {"gateway_id": "gw-1", "seq": 1, "sent_at": "2026-11-27T23:00:00Z"}
    reading = {"kind": "flood_sensor", "ts": "2026-11-27T23:00:00Z", "values": {"depth": 1.0}}
    bad = json.dumps(doc | {"readings": [reading | {"device_id": "bad id"}]}).encode()
    for _ in range(2):
        assert decode_fast(bad) is None
    ok = json.dumps(doc | {"readings": [reading | {"device_id": "fl-9"}] * 3}).encode()
    assert decode_fast(ok) is not None
    assert isinstance(msgspec.json.decode(ok), dict)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_written_in_a_form_that_reads_back_to_the_same_double(x: float) -> None:
    from schemas import WaterBlockValues

    text = FORMATS["water_block"].fields(WaterBlockValues.model_construct(flow=x))
    assert text.startswith(b"flow=")
    assert float(text[5:]) == x
    assert b"i" not in text[5:]  # never mistaken for an integer field


def test_a_time_finer_than_a_microsecond_takes_the_pydantic_path() -> None:
    # msgspec rounds the extra digits, pydantic truncates: .9999995 would change the ms
    doc = {
        "gateway_id": "gw-1",
        "seq": 1,
        "sent_at": "2026-11-27T23:00:00Z",
        "readings": [
            {
                "device_id": "d-1",
                "kind": "flood_sensor",
                "ts": "2026-11-27T23:00:00.9999995Z",
                "values": {"depth": 1.0},
            }
        ],
    }
    payload = json.dumps(doc).encode()
    assert decode_fast(payload) is None
    slow = _pydantic(payload)
    assert slow is not None
    assert _ms(slow.readings[0].ts) % 1000 == 999
