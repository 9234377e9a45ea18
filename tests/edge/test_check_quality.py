"""``akita edge check`` never shows an untrusted value as ok, and shows a failed block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomli_w
from rich.console import Console
from typer.testing import CliRunner

from edge.check_report import DeviceCheck, render
from edge.cli import app
from edge.config import Register
from edge.drivers.modbus import codec
from tests.edge.peers import server_context, server_thread


def _words(type_: str, value: Any) -> list[int]:
    encoded = codec.encode(Register(field="x", address=0, type=type_), value)
    assert isinstance(encoded, list)
    return encoded


def _config(path: Path, port: int) -> None:
    device = {
        "id": "wb-1",
        "kind": "water_block",
        "driver": "modbus_tcp",
        "host": "127.0.0.1",
        "port": port,
        "unit_id": 1,
        "registers": [
            {"field": "flow", "address": 0, "type": "float32"},
            {"field": "pressure", "address": 2, "type": "float32"},
            {"field": "totaliser", "address": 4},
            {"field": "signal_quality", "address": 5, "type": "uint8", "byte": "low"},
            {"field": "temperature_t1", "address": 300, "type": "float32"},
        ],
        "extra_fields": [
            {"name": "signal_quality", "min": 0, "max": 99},
            {"name": "temperature_t1", "unit": "°C", "min": -40, "max": 150},
        ],
    }
    path.write_text(tomli_w.dumps({"gateway": {"id": "gw-t"}, "devices": [device]}))


def test_nan_inf_out_of_range_and_missing_fail_the_check(tmp_path: Path) -> None:
    ctx = server_context([1], size=50)
    ctx[1].setValues(3, 0, _words("float32", float("nan")) + _words("float32", float("inf")))
    ctx[1].setValues(3, 4, [56, 120])
    path = tmp_path / "edge.toml"
    with server_thread(ctx) as port:
        _config(path, port)
        as_json = CliRunner().invoke(app, ["check", "-c", str(path), "--json"])
        table = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["check", "-c", str(path)])
    assert as_json.exit_code == 1, as_json.output
    (dev,) = json.loads(as_json.stdout)["devices"]
    assert dev["ok"] is False
    assert dev["values"] == {"totaliser": 56}  # nothing untrusted among the values
    assert dev["invalid"] == {
        "flow": "not a number, got nan",
        "pressure": "infinite, got inf",
        "signal_quality": "out of range (0..99), got 120",
    }
    assert dev["missing"] == {"temperature_t1": "modbus exception ILLEGAL_DATA_ADDRESS (2)"}
    assert table.exit_code == 1
    flat = table.output.replace("\n", "").replace("│", "").replace(" ", "")
    assert "FAIL" in flat and "flow:notanumber,gotnan" in flat and "flow=" not in flat
    assert "temperature_t1missing:modbusexception" in flat


def test_untrusted_and_missing_fields_are_red() -> None:
    check = DeviceCheck(
        "wb-1",
        "water_block",
        "modbus_tcp",
        False,
        3,
        {"totaliser": 56},
        None,
        {"flow": "not a number, got nan"},
        {"pressure": "timeout"},
    )
    console = Console(record=True, width=200, force_terminal=True, color_system="truecolor")
    console.print(render("gw-t", "edge.toml", [check], 200))
    styles = {span.style for span in check.detail_text().spans}
    assert styles == {"bold red"}
    red = [
        check.detail_text().plain[s.start : s.end]
        for s in check.detail_text().spans
        if s.style == "bold red"
    ]
    assert red == ["flow: not a number, got nan", "pressure missing: timeout"]
    assert "\x1b[1;31m" in console.export_text(styles=True)
