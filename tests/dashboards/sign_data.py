"""An underpass warning sign's readings for the Warning signs dashboard, from the
simulated controller (:class:`firmware_sim.models.warning_sign.WarningSignModel`) as
``deploy/edge/warning_sign.toml`` reads it, and the alerts the cloud's detector part
raises on them (the lamp is switched on a third of the way in and burns out at two
thirds, so a ``sign_lamp_fault`` is open at the end).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cloud.detect.engine import DetectorEngine
from cloud.ingest.encode import Encoder
from cloud.provisioning import read_device_list
from firmware_sim.models.warning_sign import WarningSignModel
from schemas.wire import Batch
from tests.dashboards.scenario_data import Loader

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "edge" / "warning_sign.toml"
SIGN = "sign-araya"
STEP = timedelta(minutes=10)


def _values(model: WarningSignModel, t: float) -> dict[str, Any]:
    # as the gateway reads it: the current in whole mA, scaled by 0.001
    v = model.sample(t)
    v["lamp_current"] = round(model.lamp_current(t) * 1000) / 1000
    return v


def load_signs(loader: Loader, start: datetime, end: datetime) -> None:
    gateway, devices = read_device_list(CONFIG)
    loader.registry.provision(gateway, devices)
    t0, span = start.timestamp(), (end - start).total_seconds()
    model = WarningSignModel(device_id=SIGN, key=0, lamp_fails_at=t0 + span * 2 / 3)
    readings, ts = [], start
    while ts < end:
        t = ts.timestamp()
        model.lamp = t >= t0 + span / 3
        model.siren = t >= t0 + span / 2
        model.pattern = 2 if model.lamp else 0
        readings.append({"device_id": SIGN, "kind": "warning_sign", "ts": ts.isoformat(),
                         "values": _values(model, t)})  # fmt: skip
        ts += STEP
    batch = Batch.model_validate(
        {"gateway_id": gateway, "seq": 1, "sent_at": end.isoformat(), "readings": readings}
    )
    lines: list[bytes] = []
    end_ms = int(end.timestamp() * 1000)
    Encoder(loader.registry).batch_lines(batch, lines, now_ms=end_ms, lead_ms=0, age_ms=end_ms)
    loader.store.write_lines(b"\n".join(lines).decode())
    detections = DetectorEngine().feed(batch.readings, {})
    faults = [d for d in detections if d.kind == "sign_lamp_fault"]
    assert [d.active for d in faults] == [True], faults  # burnt out, still commanded on
    for d in faults:
        loader.alerts.handle([d], d.ts)
