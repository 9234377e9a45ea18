"""A TUF-2000M flow meter's readings, as its sample config reads them, for the
Water blocks dashboard's diagnostics and quality panels.

The device is provisioned from ``deploy/edge/tuf2000m.toml`` (its declared extra
fields), its readings carry what that config decodes from the simulated meter's
registers (T1, T2, signal quality, error bits and the named fault bits, the totaliser's
fraction), and they go through the ingest's own steps: the wire model, the extra-field
check against the declaration (:class:`cloud.ingest.items.ExtraCheck`) and the
encoder's batch path into InfluxDB line protocol. While the ``fault_no_signal`` bit is
set the flow is not sent; the gateway sends the flag once when it appears and ``ok``
once when it clears, as ``edge.agent`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cloud.ingest.encode import Encoder
from cloud.ingest.items import ExtraCheck
from cloud.provisioning import read_device_list
from firmware_sim.tuf2000m import Tuf2000m
from schemas.wire import QUALITY_OK, Batch
from tests.dashboards.scenario_data import Loader

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "edge" / "tuf2000m.toml"
FAULT_BITS = ("fault_no_signal", "fault_low_signal", "fault_poor_signal", "fault_pipe_empty",
              "fault_hardware")  # fmt: skip
NO_SIGNAL = "device error fault_no_signal"  # edge.quality's reason for an invalidating bit
STEP = timedelta(minutes=10)


@dataclass(frozen=True)
class TufRun:
    device_id: str
    gateway_id: str
    fault_start: datetime
    fault_end: datetime
    meter: Tuf2000m  # its values outside the fault


def _decoded(meter: Tuf2000m) -> tuple[dict[str, Any], dict[str, Any]]:
    """(kind values, extras) as deploy/edge/tuf2000m.toml reads them from the registers."""
    whole = int(meter.net_total)
    values: dict[str, Any] = {"totaliser": float(whole)}
    extra: dict[str, Any] = {
        "totaliser_fraction": round(meter.net_total - whole, 6),
        "temperature_t1": meter.t1,
        "temperature_t2": meter.t2,
        "error_bits": float(meter.error_bits),
        "signal_quality": float(meter.signal_quality & 0xFF),
    }
    extra.update({name: bool(meter.error_bits >> bit & 1) for bit, name in enumerate(FAULT_BITS)})
    if not meter.error_bits & 1:
        values["flow"] = meter.flow
    return values, extra


def _reading(device: str, ts: datetime, meter: Tuf2000m, flag: str | None) -> dict[str, Any]:
    values, extra = _decoded(meter)
    r: dict[str, Any] = {"device_id": device, "kind": "water_block", "ts": ts.isoformat(),
                         "values": values, "extra": extra}  # fmt: skip
    if flag is not None:
        r["quality"] = {"flow": flag}
    return r


def load_tuf(loader: Loader, start: datetime, end: datetime) -> TufRun:
    """Provision the sample config's meter and write a reading every 10 minutes from
    ``start`` to ``end``, with ``fault_no_signal`` set over the middle sixth."""
    gateway, devices = read_device_list(CONFIG)
    loader.registry.provision(gateway, devices)
    device = devices[0].device_id
    span = end - start
    fault_start = start + span * 5 / 12
    fault_end = start + span * 7 / 12
    normal = Tuf2000m()
    faulty = Tuf2000m(error_bits=0b1, signal_quality=3)
    readings = []
    ts, flagged = start, False
    while ts < end:
        in_fault = fault_start <= ts < fault_end
        flag = NO_SIGNAL if in_fault and not flagged else None
        if not in_fault and flagged:
            flag = QUALITY_OK
        flagged = in_fault
        readings.append(_reading(device, ts, faulty if in_fault else normal, flag))
        ts += STEP
    batch = Batch.model_validate(
        {"gateway_id": gateway, "seq": 1, "sent_at": end.isoformat(), "readings": readings}
    )
    checked, refused = ExtraCheck(loader.registry).check(batch)
    assert not refused, refused
    lines: list[bytes] = []
    Encoder(loader.registry).batch_lines(
        checked, lines, now_ms=_ms(end), lead_ms=0, age_ms=_ms(end)
    )
    loader.store.write_lines(b"\n".join(lines).decode())
    return TufRun(device, gateway, fault_start, fault_end, normal)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)
