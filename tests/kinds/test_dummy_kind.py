"""A kind declared through the registry alone (tests/kinds/tank_level: its declaration and
its detector part) flows through a simulated Modbus device, the edge, Mosquitto, the
ingest, InfluxDB and the detectors. Nothing outside that folder names it: the only
registration is the ``AKITA_KIND_PLUGINS`` environment variable of the processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from schemas.kinds import KINDS, PLUGINS_ENV
from tests.edge.peers import server_context, server_thread
from tests.servers import Influx, Mosquitto

ROOT = Path(__file__).resolve().parents[2]


def test_dummy_kind_flows_through_edge_ingest_store_and_detectors(
    tmp_path: Path, mosquitto: Mosquitto, influx: Influx, influx_db: str
) -> None:
    assert "tank_level" not in KINDS  # this process never registered it
    context = server_context([1])
    context[1].setValues(3, 0, [250])  # 2.50 m
    env = {**os.environ, PLUGINS_ENV: "tests.kinds.tank_level"}
    with server_thread(context) as modbus_port:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.kinds.run_pipeline", str(mosquitto.port),
             str(influx.port), influx_db, str(modbus_port), str(tmp_path)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # the gauge rises past 4 m once the pipeline stores its first reading
        levels = []
        for _ in range(300):
            result = influx.query(
                "SELECT level FROM tank_level WHERE device = 'tank-1'", influx_db
            )["results"][0]
            levels = [v[1] for s in result.get("series", []) for v in s["values"]]
            if levels:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        context[1].setValues(3, 0, [475])  # 4.75 m
        out, err = proc.communicate(timeout=60)
    assert levels and levels[0] == 2.5, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1]) == {"alert": "tank_high", "device": "tank-1"}
    result = influx.query("SELECT max(level) FROM tank_level", influx_db)["results"][0]
    assert result["series"][0]["values"][0][1] == 4.75
