"""A kind declared through the registry alone flows through every layer. Its folder,
tests/kinds/tank_level, holds the declaration (``__init__.py``) and one part per layer:
the detector part (``cloud.py``), the simulator part (``sim.py``: the gauge's model and
register map) and the dashboard part (``dashboards.py``). The only registration is the
``AKITA_KIND_PLUGINS`` environment variable of the process that runs it: the
simulator part serves the gauge over Modbus, a gateway polls it with the registers the
part declares and publishes through Mosquitto, the ingest stores it in InfluxDB, the
detector part raises its alert, and every query of the generated dashboard returns the
stored data. Nothing outside the folder names the kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from schemas.kinds import KINDS, PLUGINS_ENV
from tests.dashboards.panel_queries import fill, targets
from tests.servers import Influx, Mosquitto

ROOT = Path(__file__).resolve().parents[2]


def test_dummy_kind_flows_through_sim_edge_ingest_store_detectors_and_dashboard(
    tmp_path: Path, mosquitto: Mosquitto, influx: Influx, influx_db: str
) -> None:
    assert "tank_level" not in KINDS  # this process never registered it
    env = {**os.environ, PLUGINS_ENV: "tests.kinds.tank_level"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.kinds.run_pipeline", str(mosquitto.port),
         str(influx.port), influx_db, str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    stored, alert, dashboard = (json.loads(line) for line in proc.stdout.strip().splitlines())
    assert stored == {"stored_level": 2.5}  # the sim part's model, through its registers
    assert alert == {"alert": "tank_high", "device": "tank-1"}
    result = influx.query("SELECT max(level) FROM tank_level", influx_db)["results"][0]
    assert result["series"][0]["values"][0][1] == 4.75
    # the dashboard part: the generic dashboard of the declaration, every query answered
    assert dashboard["dashboard"] == "tank-level"
    model = dashboard["model"]
    assert [p["title"] for p in model["panels"]] == [
        "level per device", "Value quality per device", "Latest diagnostics per device"
    ]  # fmt: skip
    rows = influx.query("SELECT level FROM tank_level", influx_db)["results"][0]
    stamps = [int(v[0]) for v in rows["series"][0]["values"]]  # epoch ms
    first_ms, last_ms = min(stamps), max(stamps)
    answered = {}
    for t in targets({"tank-level": model}):
        q = fill(t.query, start_ms=first_ms, end_ms=last_ms + 1,
                 values={"district": ".*", "site": ".*", "device": ".*"})  # fmt: skip
        answered[t.panel] = influx.query(q, influx_db)["results"][0]
    assert answered["level per device"].get("series"), answered
    assert answered["Latest diagnostics per device"]["series"][0]["tags"] == {"device": "tank-1"}
    # no value was ever flagged: the band has nothing to draw (its noValue text says so)
    assert not answered["Value quality per device"].get("series")
    assert "error" not in answered["Value quality per device"]
