"""Sample configs, the systemd unit, config errors and ``akita edge check``."""

from __future__ import annotations

import os
import re
import threading
import tty
from pathlib import Path

import pytest
import tomli_w
from typer.testing import CliRunner

from edge.cli import app
from edge.config import load_config
from edge.errors import ConfigError
from edge.uplink import gateway_meta
from schemas.kinds import KINDS, Via
from tests.edge.peers import server_context, server_thread

ROOT = Path(__file__).resolve().parents[2]


def test_sample_configs_validate_and_cover_every_device_kind() -> None:
    kinds = set()
    files = sorted((ROOT / "deploy" / "edge").glob("*.toml"))
    assert files
    for path in files:
        cfg = load_config(path)
        kinds |= {d.kind for d in gateway_meta(cfg).devices}  # devices and cameras
    # a kind that reaches the cloud through a LoRaWAN network server has no gateway config
    assert kinds == {k.name for k in KINDS.values() if k.via is Via.GATEWAY}


def test_systemd_unit_is_hardened_and_runs_the_agent() -> None:
    unit = (ROOT / "deploy" / "systemd" / "akita-edge.service").read_text()
    lines = {line.strip() for line in unit.splitlines()}
    assert any(x.startswith("ExecStart=") and "edge run --config" in x for x in lines)
    for need in (
        "DynamicUser=yes",
        "StateDirectory=akita",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "RestartPreventExitStatus=2",
    ):
        assert need in lines, need
    assert any(x.startswith("TimeoutStopSec=") for x in lines)
    # the spool must live in the state directory systemd gives the dynamic user
    for path in (ROOT / "deploy" / "edge").glob("*.toml"):
        assert str(load_config(path).gateway.spool_path).startswith("/var/lib/akita/")


def base(devices: list[dict[str, object]]) -> dict[str, object]:
    return {"gateway": {"id": "gw-t"}, "devices": devices}


MODBUS = {
    "id": "wb-1",
    "kind": "water_block",
    "driver": "modbus_tcp",
    "host": "127.0.0.1",
    "port": 1502,
    "unit_id": 1,
}


@pytest.mark.parametrize(
    ("device", "expect"),
    [
        (
            {**MODBUS, "registers": [{"field": "flow", "address": 0, "type": "float"}]},
            "devices[0] (id 'wb-1') -> registers.0.type",
        ),
        (
            {**MODBUS, "registers": [{"field": "level", "address": 0}]},
            "devices[0] (id 'wb-1') -> registers[0].field: water_block has no field 'level'",
        ),
        (
            {
                **MODBUS,
                "registers": [
                    {"field": "flow", "address": 0, "type": "float32"},
                    {"field": "pressure", "address": 1},
                ],
            },
            "devices[0] (id 'wb-1') -> registers[1].address: 1 overlaps registers[0]",
        ),
        (
            {**MODBUS, "poll_interval_s": "often", "registers": [{"field": "flow", "address": 0}]},
            "devices[0] (id 'wb-1') -> poll_interval_s",
        ),
        (
            {
                "id": "p-1",
                "kind": "manhole_pump",
                "driver": "modbus_rtu",
                "bus": "nope",
                "unit_id": 1,
                "registers": [{"field": "level", "address": 0}],
            },
            "devices[0] (id 'p-1') -> bus: no [[buses]] entry named 'nope'",
        ),
    ],
)
def test_config_errors_name_file_device_and_field(
    tmp_path: Path, device: dict[str, object], expect: str
) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(tomli_w.dumps(base([device])))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", str(err.value)), str(err.value)
    assert expect in str(err.value)
    result = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.output and expect in result.output


POSITIONED = """\
[gateway]
id = "gw-t"

[[devices]]
id = "wb-1"
kind = "water_block"
driver = "modbus_tcp"
host = "127.0.0.1"
port = 1502
unit_id = 1

  [[devices.registers]]
  field = "flow"
  address = 0

[[devices]]
id = "wb-2"
kind = "water_block"
driver = "modbus_tcp"
host = "127.0.0.1"
port = 1502
unit_id = 2

  [[devices.registers]]
  field = "flow"
  address = 0

  [[devices.registers]]
  field = "pressure"
  address = 4
  type = "float"
"""


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        # a bad value: the key's own line and column
        ("", "", ":31:3: devices[1] (id 'wb-2') -> registers.1.type: Input should be"),
        # a missing key: the table it belongs in
        (
            "unit_id = 2\n",
            "",
            ":16:1: devices[1] (id 'wb-2') -> <device>: driver modbus_tcp needs 'unit_id'",
        ),
        # a semantic error found after parsing: still the key's position
        (
            'field = "flow"\n  address = 0\n\n[[devices]]',
            'field = "level"\n  address = 0\n\n[[devices]]',
            ":13:3: devices[0] (id 'wb-1') -> registers[0].field: water_block has no field 'level'",
        ),
    ],
)
def test_config_errors_give_line_and_column(
    tmp_path: Path, old: str, new: str, expect: str
) -> None:
    text = POSITIONED.replace(old, new, 1) if old else POSITIONED
    if old:
        text = text.replace('type = "float"', 'type = "float32"')
    path = tmp_path / "edge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}{expect}"), str(err.value)


def test_check_reads_every_device_once_and_prints_a_table(tmp_path: Path) -> None:
    ctx = server_context([1])
    ctx[1].setValues(3, 0, [1234, 56])
    with server_thread(ctx) as port:
        ok_dev = {
            **MODBUS,
            "port": port,
            "registers": [
                {"field": "flow", "address": 0, "scale": 0.1},
                {"field": "totaliser", "address": 1},
            ],
        }
        path = tmp_path / "good.toml"
        path.write_text(tomli_w.dumps(base([ok_dev])))
        good = CliRunner().invoke(app, ["check", "--config", str(path)])
        bad_dev = {**ok_dev, "id": "wb-2", "registers": [{"field": "flow", "address": 450}]}
        path2 = tmp_path / "bad.toml"
        path2.write_text(tomli_w.dumps(base([ok_dev, bad_dev])))
        bad = CliRunner().invoke(app, ["check", "--config", str(path2)])
    assert good.exit_code == 0, good.output
    assert "wb-1" in good.output and "flow=123.4" in good.output and "totaliser=56" in good.output
    assert bad.exit_code == 1
    assert "ILLEGAL_DATA_ADDRESS" in bad.output and "wb-2" in bad.output


def test_help_teaches() -> None:
    result = CliRunner().invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    assert "SIGTERM" in result.output and "Example" in result.output


def test_check_stream_devices(tmp_path: Path) -> None:
    gps_master, gps_slave = os.openpty()
    cu_master, cu_slave = os.openpty()
    for fd in (gps_slave, cu_slave):
        tty.setraw(fd)
    done = threading.Event()

    def noise() -> None:  # a GPS line carrying only bad checksums (pyserial flushes on open)
        while not done.wait(0.05):
            os.write(gps_master, b"$GPRMC,1,A,3943.2,N,14006.6,E,1,1,011226,,,A*00\r\n")

    writer = threading.Thread(target=noise)
    writer.start()
    devices = [
        {"id": "bus-1", "kind": "vehicle", "driver": "nmea", "serial_port": os.ttyname(gps_slave)},
        {
            "id": "cu-1",
            "kind": "call_unit",
            "driver": "call_unit",
            "serial_port": os.ttyname(cu_slave),
            "unit_id": 1,
        },
        {
            "id": "cu-2",
            "kind": "call_unit",
            "driver": "call_unit",
            "serial_port": str(tmp_path / "no-such-tty"),
            "unit_id": 2,
        },
    ]
    path = tmp_path / "streams.toml"
    path.write_text(tomli_w.dumps(base(devices)))
    try:
        result = CliRunner(env={"COLUMNS": "200"}).invoke(
            app, ["check", "--config", str(path), "--stream-wait", "0.5"]
        )
    finally:
        done.set()
        writer.join()
        for fd in (gps_master, gps_slave, cu_master, cu_slave):
            os.close(fd)
    assert result.exit_code == 1
    rows = {
        line.split("│")[1].strip(): line
        for line in result.output.splitlines()
        if line.count("│") > 3
    }
    assert "FAIL" in rows["bus-1"] and "bad checksum" in rows["bus-1"]
    assert "ok" in rows["cu-1"] and "line open" in rows["cu-1"]
    assert "FAIL" in rows["cu-2"] and "cannot open line" in rows["cu-2"]


LONG_IDS = ("wb-kawajiri-flow-meter-inlet-north", "wb-kawajiri-flow-meter-inlet-south")


def _two_long_ids(tmp_path: Path, port: int) -> Path:
    """Two devices whose ids differ only at the end; the second reads a missing register."""
    regs = [{"field": "flow", "address": 0, "scale": 0.1}, {"field": "totaliser", "address": 1}]
    good = {**MODBUS, "id": LONG_IDS[0], "port": port, "registers": regs}
    bad = {**good, "id": LONG_IDS[1], "registers": [{"field": "flow", "address": 450}]}
    path = tmp_path / "long-ids.toml"
    path.write_text(tomli_w.dumps(base([good, bad])))
    return path


@pytest.mark.parametrize("columns", [200, 80, 60])
def test_check_never_cuts_an_id(tmp_path: Path, columns: int) -> None:
    ctx = server_context([1])
    ctx[1].setValues(3, 0, [1234, 56])
    with server_thread(ctx) as port:
        path = _two_long_ids(tmp_path, port)
        result = CliRunner(env={"COLUMNS": str(columns)}).invoke(app, ["check", "-c", str(path)])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= columns, result.output
    for dev_id in LONG_IDS:
        # whole, on one line, next to its own result
        (line,) = [ln for ln in lines if dev_id in ln]
        assert ("ok" if dev_id == LONG_IDS[0] else "FAIL") in line, result.output
    assert "ILLEGAL_DATA_ADDRESS" in result.output.replace("\n", "").replace(" ", "")
    # 200 columns: the table; 60: one line per device (no table borders)
    assert ("│" in result.output) is (columns == 200)


def test_check_json_is_machine_readable(tmp_path: Path) -> None:
    import json

    ctx = server_context([1])
    ctx[1].setValues(3, 0, [1234, 56])
    with server_thread(ctx) as port:
        path = _two_long_ids(tmp_path, port)
        result = CliRunner(env={"COLUMNS": "40"}).invoke(app, ["check", "-c", str(path), "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["gateway"] == "gw-t" and doc["ok"] is False
    good, bad = doc["devices"]
    assert good["device"] == LONG_IDS[0] and good["ok"] is True
    assert good["values"] == {"flow": 123.4, "totaliser": 56} and good["requests"] == 1
    assert bad["device"] == LONG_IDS[1] and bad["ok"] is False and bad["values"] is None
    assert "ILLEGAL_DATA_ADDRESS" in bad["reason"]
