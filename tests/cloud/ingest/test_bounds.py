"""Every float on the wire is bounded on both sides, so 1e400 (inf to a JSON decoder),
-1e400 and NaN are refused at decode, naming the field and the value, by the pydantic
models and by the ingest's msgspec decoder alike (never by the store)."""

from __future__ import annotations

import math
import types
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types as at
import pytest
from pydantic import BaseModel

from cloud.ingest.decode import decode_fast, mirrored
from schemas import WireError, decode_batch
from schemas.codec import decode_model
from schemas.wire import Batch, DeadLetter, GatewayHealth, GatewayMeta, GatewayStatus

WIRE = (Batch, GatewayStatus, GatewayHealth, GatewayMeta, DeadLetter)


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for info in model.model_fields.values():
        for tp in _flatten(info.annotation):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                _models(tp, seen)


def _flatten(tp: Any) -> list[Any]:
    if get_origin(tp) in (Union, types.UnionType, list, Annotated):
        return [t for arg in get_args(tp) for t in _flatten(arg)]
    return [tp]


def _float_fields() -> list[tuple[str, Any]]:
    seen: set[type[BaseModel]] = set()
    for model in WIRE:
        _models(model, seen)
    return [
        (f"{m.__name__}.{name}", info)
        for m in sorted(seen, key=lambda m: m.__name__)
        for name, info in m.model_fields.items()
        if float in _flatten(info.annotation)
    ]


def test_every_wire_float_has_a_finite_lower_and_upper_bound() -> None:
    fields = _float_fields()
    assert len(fields) > 20  # the per-kind values are walked too
    for where, info in fields:
        lower = [m for m in info.metadata if isinstance(m, (at.Ge, at.Gt))]
        upper = [m for m in info.metadata if isinstance(m, (at.Le, at.Lt))]
        assert lower and upper, f"{where} is not bounded on both sides"
        for m in lower + upper:
            bound = next(
                v for k in ("ge", "gt", "le", "lt") if (v := getattr(m, k, None)) is not None
            )
            assert math.isfinite(bound), where
    assert Batch in mirrored()  # the fast decoder derives the same bounds from these


BATCH = (
    '{"v":1,"gateway_id":"gw","seq":1,"sent_at":"2026-06-01T00:00:00Z","readings":['
    '{"device_id":"fs-1","kind":"flood_sensor","ts":"2026-06-01T00:00:00Z",'
    '"values":{"depth":%s}}]}'
)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "1e308"])
def test_absurd_reading_values_are_refused_naming_field_and_value(number: str) -> None:
    payload = (BATCH % number).encode()
    assert decode_fast(payload) is None  # the fast path hands it to pydantic
    with pytest.raises(WireError) as err:
        decode_batch(payload)
    assert "readings.0" in str(err.value) and "depth" in str(err.value)
    shown = {"1e400": "inf", "-1e400": "-inf", "NaN": "nan", "1e308": "1e+308"}[number]
    assert shown in str(err.value)


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (
            GatewayHealth,
            '{"gateway_id":"gw","ts":"2026-06-01T00:00:00Z","uptime_s":1e400,"spool_depth":0,'
            '"spool_dropped":0,"devices_total":1,"devices_online":1,"poll_errors":0,"last_seq":1}',
            "uptime_s",
        ),
        (
            GatewayMeta,
            '{"gateway_id":"gw","ts":"2026-06-01T00:00:00Z","devices":[{"device_id":"d",'
            '"kind":"water_block","poll_interval_s":1e400}]}',
            "poll_interval_s",
        ),
        (
            GatewayMeta,
            '{"gateway_id":"gw","ts":"2026-06-01T00:00:00Z","devices":[{"device_id":"d",'
            '"kind":"water_block","lat":-1e400}]}',
            "lat",
        ),
    ],
)
def test_absurd_gateway_floats_are_refused(model: type[BaseModel], body: str, field: str) -> None:
    with pytest.raises(WireError) as err:
        decode_model(model, body.encode())
    assert field in str(err.value) and "inf" in str(err.value)
