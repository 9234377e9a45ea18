"""NMEA and AKCU call-unit drivers over real ptys and TCP streams.

The test plays the device: it writes protocol bytes into the pty master (or a TCP
socket) and reads what the gateway writes back (the call-unit ACKs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import tty
from collections.abc import Iterator
from typing import Any

import pytest

from edge.config import Device, parse_config
from edge.drivers import create
from edge.drivers.callunit.driver import CallUnitDriver
from edge.drivers.callunit.protocol import sentence
from edge.drivers.nmea.driver import NmeaDriver
from edge.errors import DeviceError


@contextlib.contextmanager
def pty_pair() -> Iterator[tuple[int, str]]:
    """(master fd the test writes to, slave path the driver opens)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def gps(path: str | None = None, port: int | None = None) -> Device:
    where: dict[str, Any] = {"serial_port": path} if path else {"host": "127.0.0.1", "port": port}
    return Device(
        id="bus-12", kind="vehicle", driver="nmea", vehicle_type="bus", route_id="R5", **where
    )


RMC_FIX = sentence("GPRMC,081530.00,A,3943.2000,N,14006.6000,E,10.0,91.5,011226,,,A")
GGA_FIX = sentence("GPGGA,081530.00,3943.2000,N,14006.6000,E,1,09,0.9,12.3,M,35.1,M,,")
RMC_NOFIX = sentence("GPRMC,081531.00,V,,,,,,,011226,,,N")
GGA_NOFIX = sentence("GPGGA,081531.00,,,,,0,00,99.99,,,,,,")


async def take(stream: Any, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(anext(stream), timeout))
    return out


def test_nmea_over_pty_fix_nofix_and_garbage() -> None:
    async def go() -> None:
        with pty_pair() as (master, path):
            drv = create(gps(path), parse_config({"gateway": {"id": "gw"}}))
            assert isinstance(drv, NmeaDriver)
            await drv.open()
            stream = drv.stream()
            os.write(master, GGA_FIX + RMC_FIX)
            os.write(master, b"$GPRMC,081531.00,A,3943.2,N,14006.6,E,1,1,011226,,,A*00\r\n")
            os.write(master, b"\x00\xff\xfe garbage \x13\r\n" + b"x" * 2000 + b"\r\n")
            os.write(master, RMC_NOFIX + GGA_NOFIX)
            fixed, nofix = await take(stream, 2)
            await drv.close()
        assert fixed == {
            "vehicle_type": "bus",
            "route_id": "R5",
            "fix": True,
            "lat": pytest.approx(39.72, abs=1e-6),
            "lon": pytest.approx(140.11, abs=1e-6),
            "speed": 18.52,
            "heading": 91.5,
            "fix_quality": 1,
            "satellites": 9,
            "hdop": 0.9,
        }
        assert nofix == {
            "vehicle_type": "bus",
            "route_id": "R5",
            "fix": False,
            "fix_quality": 0,
            "satellites": 0,
            "hdop": 99.99,
        }
        assert drv.garbage == 3  # bad checksum, binary noise, over-long line
        assert drv.last_error is not None

    asyncio.run(go())


def test_a_snowplow_blade_state_rides_on_the_fixes_that_follow() -> None:
    def fix(hms: str) -> bytes:
        return sentence(f"GPRMC,{hms},A,3943.2000,N,14006.6000,E,0.0,0.0,011226,,,A") + sentence(
            f"GPGGA,{hms},3943.2000,N,14006.6000,E,1,09,0.9,12.3,M,35.1,M,,"
        )

    async def go() -> list[dict[str, Any]]:
        with pty_pair() as (master, path):
            dev = Device(
                id="plow-7",
                kind="vehicle",
                driver="nmea",
                vehicle_type="snowplow",
                serial_port=path,
            )
            drv = create(dev, parse_config({"gateway": {"id": "gw"}}))
            assert isinstance(drv, NmeaDriver)
            await drv.open()
            stream = drv.stream()
            os.write(master, fix("081530.00") + sentence("PAKSP,1") + fix("081531.00"))
            os.write(master, sentence("PAKSP,2") + fix("081532.00"))
            os.write(master, sentence("PAKSP,0") + fix("081533.00"))
            got = await take(stream, 4)
            await drv.close()
        assert drv.garbage == 1 and "PAKSP" in (drv.last_error or "")
        return got

    first, down, still_down, up = asyncio.run(go())
    assert "plow_down" not in first  # nothing reported yet
    assert (down["plow_down"], still_down["plow_down"], up["plow_down"]) == (True, True, False)
    assert up["vehicle_type"] == "snowplow" and up["fix"] is True


def test_nmea_over_tcp_and_a_closed_stream_is_a_reason() -> None:
    async def go() -> None:
        async def serve(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(RMC_FIX + GGA_FIX)
            await w.drain()
            w.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        drv = NmeaDriver(gps(port=port))
        stream = drv.stream()
        (first,) = await take(stream, 1)
        assert first["fix"] is True and first["satellites"] == 9
        with pytest.raises(DeviceError) as err:
            await take(stream, 1)
        assert "closed" in err.value.reason
        await drv.close()
        server.close()

    asyncio.run(go())


def callunit_config(path: str, units: list[int]) -> Any:
    return parse_config(
        {
            "gateway": {"id": "gw"},
            "devices": [
                {
                    "id": f"cu-{u}",
                    "kind": "call_unit",
                    "driver": "call_unit",
                    "serial_port": path,
                    "unit_id": u,
                }
                for u in units
            ],
        }
    )


async def read_acks(master: int, n: int, timeout: float = 3.0) -> list[bytes]:
    loop = asyncio.get_running_loop()
    buf = b""
    deadline = loop.time() + timeout
    while buf.count(b"\n") < n and loop.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0)
        if ready:
            buf += os.read(master, 256)
        else:
            await asyncio.sleep(0.01)
    return buf.splitlines()


def test_call_units_share_a_line_with_acks_and_dedup() -> None:
    async def go() -> None:
        with pty_pair() as (master, path):
            cfg = callunit_config(path, [7, 8])
            d7, d8 = (create(d, cfg) for d in cfg.devices)
            assert isinstance(d7, CallUnitDriver) and isinstance(d8, CallUnitDriver)
            await d7.open()
            await d8.open()
            s7, s8 = d7.stream(), d8.stream()
            os.write(master, sentence("AKCU,7,1,HB,24.5,55.0,88"))
            os.write(master, sentence("AKCU,8,40,BTN,31.2,70.1"))
            os.write(master, b"$AKCU,7,2,BTN,20.0,50.0*00\r\n")  # bad checksum
            os.write(master, sentence("AKCU,99,1,BTN,20.0,50.0"))  # not our unit: no ACK
            os.write(master, sentence("AKCU,7,1,HB,24.5,55.0,88"))  # duplicate seq
            os.write(master, sentence("AKCU,7,3,CAN"))
            (hb, cancel) = await take(s7, 2)
            (button,) = await take(s8, 1)
            # the driver ACKs once its consumer comes back for more (the reading is taken)
            pulls = [asyncio.ensure_future(anext(s)) for s in (s7, s8)]
            acks = await read_acks(master, 2)
            os.write(master, sentence("AKCU,8,40,BTN,31.2,70.1"))  # ACK was lost: re-sent
            acks += await read_acks(master, 1)
            for p in pulls:
                p.cancel()
            await d7.close()
            await d8.close()
        assert hb == {"event": "heartbeat", "temperature": 24.5, "humidity": 55.0, "battery": 88.0}
        assert cancel == {"event": "cancel"}
        assert button == {"event": "button", "temperature": 31.2, "humidity": 70.1}
        assert sorted(acks[:2]) == sorted(
            [sentence("AKAK,8,40").strip(), sentence("AKAK,7,3").strip()]
        )
        assert acks[2] == sentence("AKAK,8,40").strip()
        assert d7.garbage == 1 and d7.last_error == "bad checksum"

    asyncio.run(go())
