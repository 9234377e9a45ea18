"""InfluxDB line protocol: escaping and field typing shared by every store.

Rules (checked against influxd 1.6 and the 1.x/2.x/3.x line-protocol reference):

- measurement: escape ``,`` and space;
- tag keys, tag values, field keys: escape ``,``, ``=`` and space;
- field string values: double-quoted, escape ``"`` and ``\\``;
- integers carry an ``i`` suffix, floats are written with ``repr`` (round-trips exactly),
  booleans as ``true``/``false``.

Two things line protocol cannot carry in a tag: a line break, and a backslash at the end
of the value or before ``,``/``=``/space (influxd keeps backslashes literally and then
misreads the escape). :func:`clean_tag` replaces those with a space and ``/`` so the
SQLite store and InfluxDB hold the same tag values. An empty tag is omitted (as InfluxDB
does): "unknown" and "empty" are the same thing for a tag.

Field types are kept stable per field: a value in a schema ``float`` field is always
written as a float, even when it arrived as a whole number, because InfluxDB refuses a
later write of another type to the same field (``field type conflict``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache

from cloud.errors import StoreError
from cloud.store.base import FieldValue, Point
from schemas.devices import DeviceKind, values_model

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING = str.maketrans({'"': r"\"", "\\": "\\\\"})
_BAD_TAG_BACKSLASH = re.compile(r"\\(?=[,= ]|$)")
_LINE_BREAK = re.compile(r"[\r\n]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def escape_measurement(name: str) -> str:
    return _LINE_BREAK.sub(" ", name).translate(_MEASUREMENT)


def clean_tag(value: str) -> str:
    """The tag value as both stores keep it (see the module docstring)."""
    return _BAD_TAG_BACKSLASH.sub("/", _LINE_BREAK.sub(" ", value))


def escape_key(key: str) -> str:
    """A tag key, tag value or field key, escaped for line protocol."""
    return clean_tag(key).translate(_KEY)


def escape_string(value: str) -> str:
    return '"' + value.translate(_STRING) + '"'


@cache
def int_fields(measurement: str) -> frozenset[str]:
    """Schema fields that are integers (``fault_code``, ``satellites``, ``fix_quality``)."""
    try:
        model = values_model(DeviceKind(measurement))
    except ValueError:
        return frozenset()
    return frozenset(
        name for name, info in model.model_fields.items() if info.annotation == int | None
    )


def normalise_field(measurement: str, name: str, value: FieldValue) -> FieldValue:
    """Keep a field's type stable: whole numbers stay int only in schema int fields."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int) and name not in int_fields(measurement):
        # only device-kind measurements have a schema; elsewhere an int stays an int
        return float(value) if measurement in _KINDS else value
    return value


_KINDS = frozenset(k.value for k in DeviceKind)


def format_field(name: str, value: FieldValue) -> str:
    if value is True:
        return f"{escape_key(name)}=true"
    if value is False:
        return f"{escape_key(name)}=false"
    if isinstance(value, int):
        return f"{escape_key(name)}={value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StoreError(f"field {name!r} has non-finite value {value!r}", retryable=False)
        return f"{escape_key(name)}={value!r}"
    if isinstance(value, str):
        return f"{escape_key(name)}={escape_string(value)}"
    raise StoreError(
        f"field {name!r} has unsupported type {type(value).__name__} (value {value!r})",
        retryable=False,
    )


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """``measurement,tag=value,...`` with tags sorted and empty ones left out."""
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value:
            parts.append(f"{escape_key(key)}={escape_key(value)}")
    return ",".join(parts)


def to_ms(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise StoreError(f"naive timestamp {ts.isoformat()} refused; pass UTC", retryable=False)
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def format_point(point: Point) -> str:
    fields = ",".join(
        format_field(k, normalise_field(point.measurement, k, v))
        for k, v in point.fields.items()
        if v is not None
    )
    if not fields:
        raise StoreError(
            f"point {point.measurement} at {point.ts.isoformat()} has no fields", retryable=False
        )
    return f"{series_key(point.measurement, point.tags)} {fields} {to_ms(point.ts)}"
