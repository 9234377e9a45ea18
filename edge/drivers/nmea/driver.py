"""The NMEA :class:`~edge.drivers.base.StreamDriver`: one reading per fix epoch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import serial

from edge.config import Device
from edge.drivers.base import StreamDriver
from edge.drivers.lines import LineChannel, open_line, sentence_fields
from edge.drivers.nmea.parse import SentenceError, parse_gga, parse_rmc
from edge.errors import DeviceError

log = logging.getLogger(__name__)
EPOCH_WAIT_S = 1.0  # emit a half epoch (RMC without GGA) after this much quiet


class NmeaDriver(StreamDriver):
    """Merges the RMC and GGA of one fix time into one values dict.

    Sentences with a bad checksum or unparseable fields are counted in ``garbage``
    (and ``last_error`` says why), never raised. Epochs without a fix are yielded
    with ``fix=False`` so the cloud sees the dropout.
    """

    def __init__(self, device: Device) -> None:
        super().__init__(device)
        self._line: LineChannel | None = None
        self.sentences = 0
        self._plow_down: bool | None = None  # last $PAKSP; None until a plow reports one

    async def open(self) -> None:
        if self._line is not None:
            return
        try:
            self._line = await open_line(self.device)
        except (OSError, serial.SerialException, TimeoutError) as exc:
            raise DeviceError(self.device.id, f"cannot open line: {exc}") from exc

    async def close(self) -> None:
        if self._line is not None:
            self._line.close()
            self._line = None

    def _static(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.device.vehicle_type is not None:
            out["vehicle_type"] = self.device.vehicle_type.value
        if self.device.route_id is not None:
            out["route_id"] = self.device.route_id
        if self._plow_down is not None:
            out["plow_down"] = self._plow_down
        return out

    def _blade(self, fields: list[str], raw: bytes) -> None:
        """``$PAKSP,<0|1>``: the plow's blade state, sent after each fix. It applies to
        the fixes that follow (a blade moves far less often than once a second)."""
        if len(fields) != 2 or fields[1] not in ("0", "1"):
            self._refuse(f"bad PAKSP: blade state {fields[1:]!r} is not 0 or 1", raw)
            return
        self.sentences += 1
        self._plow_down = fields[1] == "1"

    async def stream(self) -> AsyncIterator[dict[str, Any]]:
        if self._line is None:
            await self.open()
        line = self._line
        assert line is not None
        pending_time: str | None = None
        pending: dict[str, Any] = {}
        kinds: set[str] = set()
        while True:
            try:
                async with asyncio.timeout(EPOCH_WAIT_S if pending else None):
                    raw = await line.readline()
            except TimeoutError:
                yield {**self._static(), **pending}
                pending, kinds, pending_time = {}, set(), None
                continue
            if raw is None:
                if pending:
                    yield {**self._static(), **pending}
                raise DeviceError(self.device.id, line.closed_reason or "line closed")
            fields = sentence_fields(line, raw, self._refuse)
            if fields is None:
                continue
            if fields[0] == "PAKSP":
                self._blade(fields, raw)
                continue
            kind = fields[0][-3:]
            if kind not in ("RMC", "GGA"):
                continue  # GSA, GSV, VTG...: valid but not used
            try:
                t, values = parse_rmc(fields) if kind == "RMC" else parse_gga(fields)
            except SentenceError as exc:
                self._refuse(f"bad {kind}: {exc}", raw)
                continue
            self.sentences += 1
            if pending and (t != pending_time or kind in kinds):
                yield {**self._static(), **pending}
                pending, kinds = {}, set()
            pending_time = t
            kinds.add(kind)
            # a "no fix" from either sentence wins: never report a stale position as fixed
            fix = pending.get("fix", True) and values.get("fix", True)
            pending.update(values)
            pending["fix"] = fix
            if not fix:
                pending.pop("lat", None)
                pending.pop("lon", None)
            if kinds == {"RMC", "GGA"}:
                yield {**self._static(), **pending}
                pending, kinds, pending_time = {}, set(), None

    def _refuse(self, why: str, raw: bytes) -> None:
        self.garbage += 1
        self.last_error = why
        log.debug("nmea_refused device=%s reason=%s line=%r", self.device.id, why, raw[:80])
