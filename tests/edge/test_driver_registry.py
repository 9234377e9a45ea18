"""Drivers register themselves (edge/drivers/<driver>/spec.py): the config validates
``driver = "..."`` against the registry and ``create()`` builds from it, so a new
driver needs no edit to a table in edge/config.py or edge/drivers/__init__.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.config import Device, EdgeConfig, load_config, parse_config
from edge.drivers import PollDriver, StreamDriver, create
from edge.drivers.registry import DriverSpec, UnknownDriver, names, register, spec, specs
from edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TOML = """\
[gateway]
id = "gw-t"

[[devices]]
id = "wb-1"
kind = "water_block"
driver = "modbus_tpc"
host = "127.0.0.1"
port = 1502
unit_id = 1

  [[devices.registers]]
  field = "flow"
  address = 0
"""


def test_an_unknown_driver_is_refused_naming_the_value_and_the_known_drivers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(TOML)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    known = "call_unit, modbus_rtu, modbus_rtu_over_tcp, modbus_tcp, nmea"
    assert str(err.value) == (
        f"{path}:7:1: devices[0] (id 'wb-1') -> driver: unknown driver 'modbus_tpc' "
        f"(known: {known})"
    )


def test_every_sample_config_builds_its_drivers_from_the_registry() -> None:
    shapes: dict[str, type] = {}
    for path in sorted((ROOT / "deploy" / "edge").glob("*.toml")):
        config = load_config(path)
        for dev in config.devices:
            shapes[dev.driver] = type(create(dev, config)).__mro__[1]
    assert shapes == {"modbus_tcp": PollDriver, "modbus_rtu": PollDriver,
                      "modbus_rtu_over_tcp": PollDriver, "nmea": StreamDriver,
                      "call_unit": StreamDriver}  # fmt: skip
    assert set(shapes) == set(names())


class _Echo(StreamDriver):
    async def open(self) -> None: ...

    def stream(self) -> Any:
        raise NotImplementedError

    async def close(self) -> None: ...


def _check_echo(device: Device) -> None:
    if not device.host:
        raise ValueError("driver echo needs 'host'")


@pytest.fixture
def echo() -> Iterator[DriverSpec]:
    found = register(DriverSpec("echo", lambda d, c: _Echo(d), _check_echo, kinds=("vehicle",)))
    yield found
    specs()  # loaded: the pop below cannot be undone by a later first load
    sys.modules["edge.drivers.registry"]._SPECS.pop("echo")  # type: ignore[attr-defined]


def _config(**device: Any) -> EdgeConfig:
    return parse_config({"gateway": {"id": "gw-t"}, "devices": [{"id": "v-1", **device}]})


def test_a_registered_driver_is_configured_and_built_with_no_other_edit(echo: DriverSpec) -> None:
    config = _config(kind="vehicle", driver="echo", host="gps.local")
    assert isinstance(create(config.devices[0], config), _Echo)
    with pytest.raises(ConfigError, match="driver echo needs 'host'"):
        _config(kind="vehicle", driver="echo")
    with pytest.raises(ConfigError, match="driver echo reads vehicle \\(got kind 'flood_sensor'"):
        _config(kind="flood_sensor", driver="echo", host="gps.local")
    with pytest.raises(ConfigError, match="driver echo takes no registers"):
        _config(kind="vehicle", driver="echo", host="h",
                registers=[{"field": "speed", "address": 0}])  # fmt: skip
    with pytest.raises(ConfigError, match="driver echo accepts no commands"):
        _config(kind="vehicle", driver="echo", host="h",
                actions=[{"name": "go", "field": "speed", "min": 0, "max": 1}])  # fmt: skip


def test_a_second_registration_under_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="driver 'nmea' registered twice"):
        register(DriverSpec("nmea", lambda d, c: _Echo(d)))
    with pytest.raises(UnknownDriver, match="unknown driver 'x' \\(known: call_unit, "):
        spec("x")


def test_validating_a_config_loads_no_protocol_library() -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom edge.config import load_config\n"
        "for p in sorted(Path('deploy/edge').glob('*.toml')): load_config(p)\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pymodbus', 'serial', 'serial_asyncio'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == ""
