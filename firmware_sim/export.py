"""Labelled dataset export (contract C), with no protocol in between.

Writes ``PATH.csv`` (``ts,device_id,kind,field,value``, sorted by ts, device_id, field),
``PATH.labels.json`` and ``PATH.devices.json``. Output depends only on (scenario, seed,
scale, days): the same arguments give byte-identical files. Parquet is not offered
(pyarrow is not a dependency of this project).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from firmware_sim.parts import part
from firmware_sim.plan import FleetPlan, SimDevice
from firmware_sim.scenarios import Run, build
from firmware_sim.timebase import iso_ms
from schemas.devices import DeviceKind

STEP_S = 30.0
Row = tuple[float, str, str, str, str]


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 6))
    return _csv(str(value))


def _event_rows(dev: SimDevice, t: float) -> list[Row]:
    """The messages of a kind that speaks on events (its part's ``events``) in the window."""
    events = part(dev.kind).events
    assert events is not None
    rows: list[Row] = []
    for t_msg, values in events(dev.model, t, t + STEP_S):
        if not dev.model.online(t_msg):
            continue
        ts = round(t_msg, 3)
        rows.extend((ts, dev.id, dev.kind.value, f, fmt(v)) for f, v in values.items())
    return rows


def _sample_rows(plan: FleetPlan, dev: SimDevice, t: float) -> list[Row]:
    """A polled kind's sample at t, if t is on its poll grid and the device is online."""
    if (t - plan.start) % part(dev.kind).poll_s != 0 or not dev.model.online(t):
        return []
    return [(t, dev.id, dev.kind.value, f, fmt(v)) for f, v in dev.model.sample(t).items()]


def _rows_for_window(plan: FleetPlan, t: float, devices: list[SimDevice]) -> list[Row]:
    rows: list[Row] = []
    for dev in devices:
        if part(dev.kind).events is not None:
            rows.extend(_event_rows(dev, t))
        else:
            rows.extend(_sample_rows(plan, dev, t))
    rows.sort(key=lambda r: (r[0], r[1], r[3]))
    return rows


def write_csv(run: Run, path: Path, *, kinds: set[DeviceKind] | None = None) -> int:
    """Write the readings (of ``kinds`` only, if given); returns the number of rows."""
    plan = run.plan
    devices = [d for d in plan.devices if kinds is None or d.kind in kinds]
    for d in plan.devices:  # stateful models start from the scenario's start
        reset = getattr(d.model, "reset", None)
        if reset is not None:
            reset()
    n = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("ts,device_id,kind,field,value\n")
        t = plan.start
        while t < plan.end:
            stamp: dict[float, str] = {}
            lines = []
            for ts, dev, kind, field, value in _rows_for_window(plan, t, devices):
                if ts >= plan.end:
                    continue
                iso = stamp.get(ts)
                if iso is None:
                    iso = stamp[ts] = iso_ms(ts)
                lines.append(f"{iso},{dev},{kind},{field},{value}\n")
            f.writelines(lines)
            n += len(lines)
            t += STEP_S
    return n


def _csv(value: str) -> str:
    if any(c in value for c in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def devices_json(run: Run) -> dict[str, Any]:
    plan = run.plan
    return {
        "devices": [d.info.model_dump(mode="json", exclude_none=True) for d in plan.devices],
        "sites": {d.id: d.facts for d in plan.devices},
        "routes": {k: [[lat, lon] for lat, lon in v] for k, v in plan.routes.items()},
    }


def sidecar(path: Path, suffix: str) -> Path:
    """``out.csv`` -> ``out.labels.json``."""
    return path.with_name(path.name.removesuffix(".csv") + suffix)


def export(
    scenario: str,
    out: Path,
    *,
    seed: int = 1,
    scale: str = "small",
    days: float | None = None,
    kinds: set[DeviceKind] | None = None,
) -> tuple[Path, Path, Path, int]:
    """Write the dataset; ``kinds`` limits the CSV rows to some device kinds."""
    run = build(scenario, seed=seed, scale=scale, days=days)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = write_csv(run, out, kinds=kinds)
    labels = sidecar(out, ".labels.json")
    devices = sidecar(out, ".devices.json")
    labels.write_text(_dumps(run.labels_json()), encoding="utf-8")
    devices.write_text(_dumps(devices_json(run)), encoding="utf-8")
    return out, labels, devices, n


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=False) + "\n"
