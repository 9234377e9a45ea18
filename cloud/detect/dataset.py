"""Read a labelled export (contract C): CSV readings, labels.json and devices.json."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cloud.errors import CloudError
from schemas.kinds import KINDS
from schemas.wire import READING_MODELS, DeviceInfo, Reading

READING_TYPES: dict[str, Any] = READING_MODELS
FIELDS = {name: frozenset(k.values.model_fields) for name, k in KINDS.items()}


def _typed(annotation: Any) -> str:
    for t in (bool, int, float):  # bool first: it is an int
        if annotation in (t, t | None):
            return t.__name__
    return "str"  # strings and enums


_TYPES = {
    name: _typed(info.annotation)
    for k in KINDS.values()
    for name, info in k.values.model_fields.items()
}
STRING_FIELDS = frozenset(n for n, t in _TYPES.items() if t == "str")
INT_FIELDS = frozenset(n for n, t in _TYPES.items() if t == "int")


class DatasetError(CloudError):
    """A labelled export is missing or malformed (names the file, line and value)."""


@dataclass(frozen=True)
class Label:
    kind: str
    device_id: str
    start: datetime
    end: datetime | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def context(self) -> bool:
        return bool(self.info.get("context"))


@dataclass
class Export:
    """One labelled export. ``readings`` is None when they are streamed from ``path``
    (``load_export(..., load_readings=False)``): a city-scale export does not fit in memory.
    """

    path: Path
    scenario: str
    start: datetime
    end: datetime
    readings: list[Reading] | None
    labels: list[Label]
    devices: dict[str, DeviceInfo]
    sites: dict[str, dict[str, Any]]
    routes: dict[str, list[list[float]]]

    def iter_readings(self) -> Iterator[Reading]:
        """Readings grouped per (ts, device), in time order."""
        if self.readings is not None:
            return iter(self.readings)
        return iter_readings(self.path)


def parse_ts(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise DatasetError(f"bad timestamp {text!r}") from exc


def _value(fld: str, text: str) -> Any:
    if text == "true":
        return True
    if text == "false":
        return False
    if fld in STRING_FIELDS:
        return text
    if fld in INT_FIELDS:
        return int(float(text))
    return float(text)


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != ["ts", "device_id", "kind", "field", "value"]:
            want = "ts,device_id,kind,field,value"
            raise DatasetError(f"{path}: header must be {want}, got {header}")
        yield from enumerate(reader, start=2)


def read_readings(path: Path) -> list[Reading]:
    return list(iter_readings(path))


def iter_readings(path: Path) -> Iterator[Reading]:
    """Group CSV rows into readings, streaming; values are built without re-validation
    (a trusted export), but every kind and field name is checked."""
    key: tuple[str, str] | None = None
    kind = ""
    vals: dict[str, Any] = {}
    ts_cache: dict[str, datetime] = {}

    def build() -> Reading:
        assert key is not None
        model = KINDS[kind].values
        reading: Reading = READING_TYPES[kind].model_construct(
            device_id=key[1], ts=ts_cache[key[0]], kind=kind, values=model.model_construct(**vals)
        )
        return reading

    for line, row in _rows(path):
        if len(row) != 5:
            raise DatasetError(f"{path}:{line}: expected 5 columns, got {row!r}")
        ts_text, dev, k, fld, text = row
        if (ts_text, dev) != key:
            if key is not None:
                yield build()
            key, kind, vals = (ts_text, dev), k, {}
            if ts_text not in ts_cache:
                ts_cache.clear()
                ts_cache[ts_text] = parse_ts(ts_text)
            if k not in READING_TYPES:
                raise DatasetError(f"{path}:{line}: unknown kind {k!r}")
        if fld not in FIELDS[kind]:
            raise DatasetError(f"{path}:{line}: unknown field {fld!r} for kind {kind}")
        try:
            vals[fld] = _value(fld, text)
        except ValueError as exc:
            raise DatasetError(f"{path}:{line}: bad value {text!r} for field {fld}") from exc
    if key is not None:
        yield build()


def sidecar(path: Path, suffix: str) -> Path:
    """``x.csv`` -> ``x.labels.json`` / ``x.devices.json``."""
    return path.with_name(path.name.removesuffix(".csv") + suffix)


def load_export(path: Path, *, load_readings: bool = True) -> Export:
    if not path.is_file():
        raise DatasetError(f"export {path} not found")
    lab_path, dev_path = sidecar(path, ".labels.json"), sidecar(path, ".devices.json")
    try:
        lab = json.loads(lab_path.read_text(encoding="utf-8"))
        dev = json.loads(dev_path.read_text(encoding="utf-8")) if dev_path.exists() else {}
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read the sidecars of {path}: {exc}") from exc
    labels = [
        Label(
            kind=x["kind"],
            device_id=x["device_id"],
            start=parse_ts(x["start"]),
            end=parse_ts(x["end"]) if x.get("end") else None,
            info=dict(x.get("info") or {}),
        )
        for x in lab.get("labels", [])
    ]
    devices = {d["device_id"]: DeviceInfo.model_validate(d) for d in dev.get("devices", [])}
    readings = read_readings(path) if load_readings else None
    if lab.get("start") and lab.get("end"):
        start, end = parse_ts(lab["start"]), parse_ts(lab["end"])
    else:
        first = last = None
        for r in readings if readings is not None else iter_readings(path):
            first = first or r.ts
            last = r.ts
        if first is None or last is None:
            raise DatasetError(f"{path}: no readings and no start/end in the labels")
        start, end = first, last
    return Export(
        path=path,
        scenario=str(lab.get("scenario", path.stem)),
        start=start,
        end=end,
        readings=readings,
        labels=labels,
        devices=devices,
        sites={k: dict(v) for k, v in (dev.get("sites") or {}).items()},
        routes={k: [list(p) for p in v] for k, v in (dev.get("routes") or {}).items()},
    )
