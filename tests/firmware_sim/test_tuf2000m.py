"""The TUF-2000M sample config against the simulated meter on an RTU line at 9600 baud."""

from __future__ import annotations

import asyncio
import json
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from edge.cli import app
from firmware_sim.servers.modbus import RtuPtyBus
from firmware_sim.tuf2000m import Tuf2000m, Tuf2000mContext

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "edge" / "tuf2000m.toml"


def f32(x: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


@contextmanager
def meter_on_a_bus(meter: Tuf2000m, unit: int = 1) -> Iterator[tuple[str, Tuf2000mContext]]:
    """The meter behind a simulated RS-485 bus (own thread and loop), holding wire time."""
    ctx = Tuf2000mContext(meter)
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        bus = RtuPtyBus("tuf", {unit: ctx}, baudrate=9600)
        state["path"] = await bus.start()
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await state["stop"].wait()
        await bus.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield str(state["path"]), ctx
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)


def check(tmp_path: Path, port: str) -> tuple[int, dict[str, Any]]:
    config = tmp_path / "tuf2000m.toml"
    config.write_text(SAMPLE.read_text(encoding="utf-8").replace("/dev/ttyUSB0", port, 1))
    result = CliRunner().invoke(app, ["check", "-c", str(config), "--json"])
    (device,) = json.loads(result.stdout)["devices"]
    return result.exit_code, device


def test_sample_config_reads_every_value_of_the_meter(tmp_path: Path) -> None:
    with meter_on_a_bus(Tuf2000m()) as (port, ctx):
        code, dev = check(tmp_path, port)
    assert code == 0, dev
    assert dev["values"] == {
        "flow": f32(-0.8598),
        "totaliser": 23,
        "totaliser_fraction": 0.5,
        "temperature_t1": f32(7.101),
        "temperature_t2": 5.5,
        "error_bits": 0,
        "fault_no_signal": False,
        "fault_low_signal": False,
        "fault_poor_signal": False,
        "fault_pipe_empty": False,
        "fault_hardware": False,
        "signal_quality": 85,
    }
    assert dev["requests"] == 5 and ctx.reads == 5  # flow, totaliser, T1-T2, errors, quality


def test_sample_config_shows_error_bits_and_a_lost_signal(tmp_path: Path) -> None:
    meter = Tuf2000m(flow=float("nan"), error_bits=0b1010, signal_quality=12)
    with meter_on_a_bus(meter) as (port, _):
        code, dev = check(tmp_path, port)
    assert code == 1
    assert dev["invalid"] == {"flow": "not a number, got nan"}
    values = dev["values"]
    assert "flow" not in values
    assert values["error_bits"] == 10 and values["signal_quality"] == 12
    assert values["fault_low_signal"] is True and values["fault_pipe_empty"] is True
    assert values["fault_no_signal"] is False and values["fault_hardware"] is False
