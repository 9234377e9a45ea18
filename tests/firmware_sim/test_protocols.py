"""Every simulator read through the edge's own drivers (contract D) over real transports:
pymodbus clients on loopback TCP, pyserial on pty pairs, NMEA and AKCU lines on pty and TCP.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from edge.config import Device, EdgeConfig, load_config
from edge.drivers import PollDriver, StreamDriver, create
from edge.errors import DeviceError
from firmware_sim.fleet import RunningFleet, start_fleet
from firmware_sim.servers.akcu import format_message, parse_ack
from firmware_sim.servers.nmea import checksum
from schemas.clock import SimClock

HOUR = 3600.0


@asynccontextmanager
async def fleet(tmp: Path, scenario: str, **kw: Any) -> AsyncIterator[RunningFleet]:
    kw.setdefault("calendar", "scenario")  # the scenario's own dates: same data every day
    f = await start_fleet(scenario, workdir=tmp / scenario, mqtt_port=1883, **kw)
    try:
        yield f
    finally:
        await f.stop()


def config(f: RunningFleet) -> EdgeConfig:
    (path,) = f.edge_configs
    return load_config(path)


def device(cfg: EdgeConfig, device_id: str) -> Device:
    return next(d for d in cfg.devices if d.id == device_id)


async def poll(cfg: EdgeConfig, device_id: str) -> dict[str, Any]:
    drv = create(device(cfg, device_id), cfg)
    assert isinstance(drv, PollDriver)
    await drv.open()
    try:
        return await drv.read()
    finally:
        await drv.close()


async def first(
    drv: StreamDriver, pred: Any = lambda v: True, timeout: float = 10.0
) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async for v in drv.stream():
            if pred(v):
                return v
        raise AssertionError("stream ended")

    return await asyncio.wait_for(go(), timeout)


def test_modbus_devices_read_through_edge_drivers(tmp_path: Path) -> None:
    async def main() -> None:
        async with fleet(tmp_path, "normal_week", speed=1.0) as f:
            cfg = config(f)
            plan = f.run.plan
            kinds = {d.id: d.driver for d in cfg.devices}
            assert {"modbus_tcp", "modbus_rtu", "nmea", "call_unit"} == set(kinds.values())
            for dev in plan.devices:
                if kinds[dev.id] not in ("modbus_tcp", "modbus_rtu"):
                    continue
                v = await poll(cfg, dev.id)
                t = f.clock.now_ts()
                m: Any = dev.model
                if dev.kind == "water_block":
                    assert v["flow"] == pytest.approx(m.flow(t), rel=0.08)
                    assert v["pressure"] == pytest.approx(m.pressure_bar(t) / 10, abs=0.003)
                    assert 0.15 < v["pressure"] < 0.75  # MPa, scaled from bar by the config
                    assert v["totaliser"] == pytest.approx(int(m.totaliser(t)), abs=2)
                elif dev.kind == "manhole_pump":
                    s = m.sample(t)
                    assert v["level"] == pytest.approx(s["level"], abs=0.02)
                    assert v["pump1_running"] == s["pump1_running"]
                    assert v["pump1_run_hours"] == pytest.approx(s["pump1_run_hours"], abs=0.02)
                    assert v["fault_code"] == 0
                else:
                    assert v == {"depth": 0.0, "rain_intensity": 0.0}  # a dry June night

    asyncio.run(main())


def test_faults_are_visible_through_the_protocol(tmp_path: Path) -> None:
    async def main() -> None:
        async with fleet(tmp_path, "stuck_pressure", speed=600.0, sim_offset_s=18 * HOUR) as f:
            (lab,) = [x for x in f.run.labels if x.kind == "stuck_sensor"]
            assert lab.start < f.clock.now_ts()
            cfg = config(f)
            a = await poll(cfg, lab.device_id)
            await asyncio.sleep(0.5)  # five simulated minutes
            b = await poll(cfg, lab.device_id)
            assert a["pressure"] == b["pressure"]
            assert a["flow"] != b["flow"]
        async with fleet(tmp_path, "pump_fail_to_start", speed=60.0, sim_offset_s=12 * HOUR) as f:
            (lab,) = [x for x in f.run.labels if x.kind == "pump_fail_to_start"]
            cfg = config(f)
            v = await poll(cfg, lab.device_id)
            assert v["fault_code"] == 19
            assert not v["pump1_running"] and not v["pump2_running"]
            dev = device(cfg, lab.device_id)
            client = AsyncModbusTcpClient(dev.host or "", port=dev.port or 0, timeout=1)
            await client.connect()
            try:
                rr = await client.read_input_registers(3, count=1, slave=dev.unit_id)
                assert rr.registers[0] & 0b1100 == 0b1100  # both pump fault bits
                assert rr.registers[0] & 0b10000  # high level
            finally:
                client.close()

    asyncio.run(main())


def test_an_offline_device_stops_answering(tmp_path: Path) -> None:
    async def main() -> None:
        async with fleet(tmp_path, "device_offline", speed=1.0, sim_offset_s=7 * HOUR) as f:
            (lab,) = [
                x
                for x in f.run.labels
                if x.kind == "device_offline" and x.device_id.startswith("ps")
            ]
            cfg = config(f)
            with pytest.raises(DeviceError):
                await poll(cfg, lab.device_id)
            other = next(
                d.id for d in cfg.devices if d.kind == "manhole_pump" and d.id != lab.device_id
            )
            assert "level" in await poll(cfg, other)

    asyncio.run(main())


@pytest.mark.parametrize("streams", ["pty", "tcp"])
def test_nmea_fixes_and_dropouts_through_the_edge_driver(tmp_path: Path, streams: str) -> None:
    async def main() -> None:
        async with fleet(tmp_path, "bus_gps_dropout_off_route", speed=10.0, streams=streams) as f:
            (lab,) = [x for x in f.run.labels if x.kind == "gps_dropout"]
            cfg = config(f)
            for d in cfg.devices:
                if d.driver == "nmea":
                    assert (d.serial_port is not None) == (streams == "pty")
            drv = create(device(cfg, lab.device_id), cfg)
            assert isinstance(drv, StreamDriver)
            await drv.open()
            try:
                v = await first(drv, lambda v: v.get("fix"))
                t = f.clock.now_ts()
                model: Any = f.run.plan.by_id(lab.device_id).model
                lat, lon, _, _ = model.true_position(t)
                assert abs(v["lat"] - lat) < 0.003 and abs(v["lon"] - lon) < 0.003
                assert v["vehicle_type"] == "bus" and v["satellites"] >= 4
                assert drv.garbage == 0  # every checksum was right
            finally:
                await drv.close()
        # inside the injected dropout the receiver keeps talking, without a fix
        async with fleet(
            tmp_path / "drop", "bus_gps_dropout_off_route", speed=10.0, streams=streams,
            sim_offset_s=lab.start - f.run.plan.start + 60,
        ) as f:  # fmt: skip
            drv = create(device(config(f), lab.device_id), config(f))
            assert isinstance(drv, StreamDriver)
            await drv.open()
            try:
                v = await first(drv)
                assert v["fix"] is False and "lat" not in v
            finally:
                await drv.close()

    asyncio.run(main())


def test_nmea_sentences_carry_valid_checksums(tmp_path: Path) -> None:
    async def main() -> None:
        async with fleet(tmp_path, "snowfall_snowplows", speed=60.0) as f:
            cfg = config(f)
            plow = next(
                d for d in cfg.devices if d.vehicle_type and d.vehicle_type.value == "snowplow"
            )
            assert plow.serial_port is not None
            fd = os.open(plow.serial_port, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                buf = b""
                deadline = time.monotonic() + 5
                while buf.count(b"\n") < 6 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    with suppress(BlockingIOError):
                        buf += os.read(fd, 4096)
            finally:
                os.close(fd)
            lines = [x for x in buf.decode("ascii").split("\r\n") if x.startswith("$")]
            assert {x[1:6] for x in lines} >= {"GNRMC", "GNGGA", "PAKSP"}
            for x in lines:
                body, _, hh = x[1:].partition("*")
                assert checksum(body) == hh

    asyncio.run(main())


@pytest.mark.parametrize("streams", ["pty", "tcp"])
def test_call_unit_button_is_acknowledged_through_the_edge_driver(
    tmp_path: Path, streams: str
) -> None:
    async def main() -> None:
        # the demo's button press comes 12 simulated minutes in: start just before it
        async with fleet(
            tmp_path, "demo", speed=60.0, sim_offset_s=11.5 * 60, streams=streams
        ) as f:
            (lab,) = [x for x in f.run.labels if x.kind == "button_press"]
            cfg = config(f)
            drv = create(device(cfg, lab.device_id), cfg)
            assert isinstance(drv, StreamDriver)
            await drv.open()
            try:
                gen = drv.stream()
                v = await asyncio.wait_for(_next_button(gen), 10)
                assert v["temperature"] > 10 and 0 < v["humidity"] <= 100
                (line,) = f.lines
                deadline = time.monotonic() + 5
                while line.acks == 0 and time.monotonic() < deadline:
                    # the driver acknowledges when the reading is taken: ask for the next one
                    with suppress(TimeoutError):
                        await asyncio.wait_for(gen.__anext__(), 0.3)
                assert line.acks >= 1
                assert not line.pending
            finally:
                await drv.close()

    asyncio.run(main())


async def _next_button(gen: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    async for v in gen:
        if v.get("event") == "button":
            return v
    raise AssertionError("stream ended")


def test_unacknowledged_button_is_repeated_with_the_same_seq(tmp_path: Path) -> None:
    async def main() -> None:
        async with fleet(tmp_path, "demo", speed=20.0, sim_offset_s=11.9 * 60) as f:
            (line,) = f.lines
            ep: Any = line.endpoint
            fd = os.open(ep.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                buf = b""
                deadline = time.monotonic() + 6
                while buf.count(b",BTN,") < 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    with suppress(BlockingIOError):
                        buf += os.read(fd, 65536)
                btn = [x for x in buf.decode("ascii").split("\r\n") if ",BTN," in x]
                assert len(btn) >= 3 and len(set(btn)) == 1  # same unit, same msg_seq
                unit, seq = (int(p) for p in btn[0].split(",")[1:3])
                body = f"AKAK,{unit},{seq}"
                os.write(fd, f"${body}*{checksum(body)}\r\n".encode())
                deadline = time.monotonic() + 3
                while line.pending and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert not line.pending and line.acks == 1
            finally:
                os.close(fd)

    asyncio.run(main())


def test_akcu_frames_follow_contract_a() -> None:
    hb = format_message(17, 65535, "HB", {"temperature": 24.26, "humidity": 61.0, "battery": 88.0})
    assert hb.startswith(b"$AKCU,17,65535,HB,24.3,61.0,88*") and hb.endswith(b"\r\n")
    body = hb[1 : hb.index(b"*")].decode()
    assert hb[hb.index(b"*") + 1 : -2].decode() == checksum(body)
    assert format_message(3, 9, "CAN", {}).startswith(b"$AKCU,3,9,CAN*")
    good = f"$AKAK,3,9*{checksum('AKAK,3,9')}"
    assert parse_ack(good) == (3, 9)
    assert parse_ack(good[:-2] + "00") is None
    assert parse_ack("$AKAK,3*00") is None


def test_fleet_writes_clock_labels_and_valid_edge_configs(tmp_path: Path) -> None:
    async def main() -> None:
        async with fleet(tmp_path, "demo", speed=60.0, calendar="recent") as f:
            clock = SimClock.read(f.clock_path)
            assert clock.speed == 60.0
            assert abs(clock.now_ts() - f.run.plan.start) < 600
            # live runs start at the latest 00:00 JST, so readings carry recent timestamps
            assert time.time() - 86_400 - 60 < clock.origin_sim <= time.time()
            assert (clock.origin_sim + 9 * 3600) % 86_400 == 0
            for path in f.edge_configs:
                cfg = load_config(path)
                assert cfg.gateway.clock_file == f.clock_path
                assert cfg.mqtt.port == 1883
            ids = {d.id for p in f.edge_configs for d in load_config(p).devices}
            assert ids == {d.id for d in f.run.plan.devices} == {d.device_id for d in f.devices}
            assert f.labels_path.exists() and f.devices_path.exists()

    asyncio.run(main())
