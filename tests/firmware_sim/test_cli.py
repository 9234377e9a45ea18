"""``akita sim`` through the root CLI (Typer's runner, real files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from akita.cli import app
from firmware_sim.scenarios import SCENARIOS

runner = CliRunner()


def test_list_shows_every_scenario() -> None:
    result = runner.invoke(app, ["sim", "list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("normal_week", "heavy_rain_flood", "heat_wave", "device_offline", "demo"):
        assert name in result.output


@pytest.mark.parametrize("columns", [80, 60])
def test_list_never_cuts_a_name(columns: int) -> None:
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(app, ["sim", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= columns
    for name, scenario in SCENARIOS.items():
        # whole, on one line, with its start date beside it
        (line,) = [ln for ln in lines if re.search(rf"(^|[ │]){name}([ │]|$)", ln)]
        assert "{:04d}-{:02d}-{:02d}".format(*scenario.date) in line, result.output
    assert ("│" in result.output) is (columns == 80)


def test_list_json() -> None:
    result = CliRunner(env={"COLUMNS": "40"}).invoke(app, ["sim", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["scenario"] for r in rows] == list(SCENARIOS)
    demo = next(r for r in rows if r["scenario"] == "demo")
    assert demo["starts"] == "{:04d}-{:02d}-{:02d}".format(*SCENARIOS["demo"].date)
    assert demo["days"] == SCENARIOS["demo"].days
    assert demo["description"] == SCENARIOS["demo"].description


def test_export_writes_csv_and_sidecars(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    args = ["sim", "export", "demo", "--out", str(out), "--days", "0.02", "--seed", "5"]
    result = runner.invoke(app, [*args, "--kind", "flood_sensor"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("ts,device_id,kind,field,value\n")
    assert (tmp_path / "x.labels.json").exists() and (tmp_path / "x.devices.json").exists()
    assert {line.split(",")[2] for line in out.read_text().splitlines()[1:]} == {"flood_sensor"}


def test_bad_input_names_the_parameter(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sim", "export", "nope", "--out", str(tmp_path / "a.csv")])
    assert result.exit_code != 0 and "unknown scenario 'nope'" in result.output
    result = runner.invoke(app, ["sim", "export", "demo", "--out", str(tmp_path / "a.parquet")])
    assert result.exit_code != 0 and ".csv" in result.output


def test_run_prints_endpoints_and_stops(tmp_path: Path) -> None:
    args = ["sim", "run", "demo", "--speed", "60", "--workdir", str(tmp_path), "--duration", "0.5"]
    # rich takes the width from COLUMNS when the output is no terminal: wide enough
    # that the table keeps each endpoint on one line
    result = runner.invoke(app, args, terminal_width=200, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "modbus_tcp 127.0.0.1:" in result.output and "clock.json" in result.output
    assert (tmp_path / "edge" / "gw-small-01.toml").exists()
    assert "stopped" in result.output
