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

from firmware_sim.models.callunit import CallUnitModel
from firmware_sim.parts import poll_s
from firmware_sim.plan import FleetPlan, SimDevice
from firmware_sim.scenarios import Run, build
from firmware_sim.timebase import iso_ms
from schemas.devices import CallUnitEvent, DeviceKind

STEP_S = 30.0
EVENTS = {"HB": CallUnitEvent.HEARTBEAT, "BTN": CallUnitEvent.BUTTON, "CAN": CallUnitEvent.CANCEL}


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 6))
    return _csv(str(value))


def _rows_for_window(
    plan: FleetPlan, t: float, devices: list[SimDevice]
) -> list[tuple[float, str, str, str, str]]:
    rows: list[tuple[float, str, str, str, str]] = []
    offset = t - plan.start
    for dev in devices:
        kind = dev.kind
        if kind is DeviceKind.CALL_UNIT:
            m = dev.model
            assert isinstance(m, CallUnitModel)
            for msg in m.messages(t, t + STEP_S):
                if not m.online(msg.t):
                    continue
                ts = round(msg.t, 3)
                vals = {"event": EVENTS[msg.type].value, **msg.values}
                for f, v in vals.items():
                    rows.append((ts, dev.id, kind.value, f, fmt(v)))
            continue
        if offset % poll_s(kind) != 0:
            continue
        if not dev.model.online(t):
            continue
        for f, v in dev.model.sample(t).items():
            rows.append((t, dev.id, kind.value, f, fmt(v)))
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
