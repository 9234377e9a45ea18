"""A scenario fleet serves each device over the transport its kind's simulator part
declares; nothing in the fleet names a kind. A plugin kind (tests/kinds/tank_level,
registered only by AKITA_KIND_PLUGINS) added to a fleet is served, written into its
gateway's edge config and read back through the edge's Modbus driver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.parts import SimPart, Transport, parts, register
from schemas.kinds import KINDS, PLUGINS_ENV

ROOT = Path(__file__).resolve().parents[2]


def test_a_plugin_kinds_transport_puts_it_in_the_fleet(tmp_path: Path) -> None:
    assert "tank_level" not in KINDS  # registered only in the subprocess
    env = {**os.environ, PLUGINS_ENV: "tests.kinds.tank_level"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.firmware_sim.run_tank_fleet", str(tmp_path), "3.21"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["driver"] == "modbus_tcp"  # the part's transport
    assert got["fields"] == ["level"]  # the part's edge registers
    assert got["endpoint"].endswith(f"unit {got['unit_id']}")
    assert got["read"] == {"level": 3.21}  # the tank's model, served and read back


def test_every_scenario_kind_declares_a_transport() -> None:
    fleet_kinds = {k: p.transport for k, p in parts().items() if p.fleet}
    assert fleet_kinds == {
        "water_block": Transport.MODBUS_TCP,
        "manhole_pump": Transport.MODBUS_TCP,
        "flood_sensor": Transport.MODBUS_RTU,
        "vehicle": Transport.NMEA,
        "call_unit": Transport.AKCU,
    }


def test_a_modbus_transport_without_a_register_map_is_refused() -> None:
    assert "water_meter" not in parts()
    with pytest.raises(ValueError, match="needs a register map"):
        register(SimPart("water_meter", poll_s=60.0, transport=Transport.MODBUS_RTU))
    assert "water_meter" not in parts()
