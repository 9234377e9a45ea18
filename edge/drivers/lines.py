"""Line-oriented byte streams from a serial port (pyserial; a pty in tests) or TCP.

NMEA 0183 and the AKCU call-unit protocol are both ASCII lines ending in CR LF.
A :class:`LineChannel` turns whatever arrives into complete lines and bounds what
line noise can cost: a "line" longer than ``max_line`` bytes is thrown away and
counted in ``overruns``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

import serial

from edge.config import Device

MAX_LINE = 512


class LineChannel:
    """Complete lines from a serial port or a TCP stream; ``readline()`` is None at EOF."""

    def __init__(self, name: str, *, max_line: int = MAX_LINE) -> None:
        self.name = name
        self.max_line = max_line
        self.overruns = 0
        self.closed_reason: str | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._buf = b""
        self._serial: Any = None
        self._tcp: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    # -- input -------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if len(line) > self.max_line:
                self.overruns += 1
            else:
                self._queue.put_nowait(line.rstrip(b"\r"))
        if len(self._buf) > self.max_line:
            self.overruns += 1
            self._buf = b""

    def feed_eof(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._queue.put_nowait(None)

    async def readline(self) -> bytes | None:
        return await self._queue.get()

    # -- output ------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._serial is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                self._serial.write(data)
        elif self._tcp is not None:
            self._tcp.write(data)

    # -- opening and closing -----------------------------------------------------------------

    async def open_serial(self, port: str, baudrate: int) -> None:
        ser = serial.Serial(port, baudrate=baudrate, timeout=0, write_timeout=1)
        self._serial = ser
        fd = ser.fileno()
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError as exc:
                loop.remove_reader(fd)
                self.feed_eof(f"serial error: {exc.strerror}")
                return
            if not data:
                loop.remove_reader(fd)
                self.feed_eof("serial port closed")
                return
            self.feed(data)

        loop.add_reader(fd, readable)

    async def open_tcp(self, host: str, port: int, timeout: float) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        self._tcp = writer

        async def pump() -> None:
            try:
                while data := await reader.read(4096):
                    self.feed(data)
                self.feed_eof("connection closed by peer")
            except OSError as exc:
                self.feed_eof(f"connection error: {exc}")

        self._task = asyncio.create_task(pump())

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(OSError, ValueError):
                asyncio.get_running_loop().remove_reader(self._serial.fileno())
            with contextlib.suppress(OSError, serial.SerialException):
                self._serial.close()
            self._serial = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.feed_eof("closed")


def line_key(device: Device) -> str:
    return device.serial_port or f"{device.host}:{device.port}"


async def open_line(device: Device) -> LineChannel:
    """Open the device's serial port or TCP stream. Raises OSError/SerialException."""
    channel = LineChannel(line_key(device))
    if device.serial_port:
        await channel.open_serial(device.serial_port, device.baudrate)
    else:
        assert device.host and device.port
        await channel.open_tcp(device.host, device.port, device.timeout_s)
    return channel


def nmea_checksum(body: bytes) -> str:
    """XOR of every byte between '$' and '*', as two upper-case hex digits."""
    x = 0
    for b in body:
        x ^= b
    return f"{x:02X}"


def split_sentence(line: bytes) -> tuple[list[str] | None, str | None]:
    """``$BODY*HH`` -> (fields, None), or (None, why it was refused)."""
    line = line.strip()
    if not line.startswith(b"$") or len(line) < 4 or line[-3:-2] != b"*":
        return None, "garbage frame"
    body, given = line[1:-3], line[-2:]
    try:
        text = body.decode("ascii")
        given_text = given.decode("ascii").upper()
    except UnicodeDecodeError:
        return None, "garbage frame"
    if nmea_checksum(body) != given_text:
        return None, "bad checksum"
    return text.split(","), None


def sentence_fields(
    channel: LineChannel, raw: bytes, refuse: Callable[[str, bytes], None]
) -> list[str] | None:
    """The checked fields of ``raw``, a line just read from ``channel``, or None to pass it over.

    Lines thrown away as over-long since the last call are reported to ``refuse`` once, a
    blank line is passed over silently, and a sentence ``split_sentence`` rejects goes to
    ``refuse`` with the reason.
    """
    if channel.overruns:
        refuse("garbage frame (over-long line)", raw)
        channel.overruns = 0
    if not raw.strip():
        return None
    fields, why = split_sentence(raw)
    if fields is None:
        refuse(why or "garbage frame", raw)
    return fields
