"""The warning sign's Modbus unit: the one simulated device that accepts writes.

The other simulated devices are sensors and refuse every write
(:class:`firmware_sim.servers.modbus.LazySlaveContext`). A sign's controller takes
functions 5/15 on its two output coils and 6/16 on its pattern and heartbeat registers
(:mod:`firmware_sim.models.warning_sign` has the map); any other write gets exception 02
(illegal data address) and a value it cannot take exception 03 (illegal data value), as
a real controller answers. Serve it on an :class:`~firmware_sim.servers.modbus.RtuPtyBus`
like any other unit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from pymodbus.datastore.context import ModbusBaseSlaveContext
from pymodbus.exceptions import NoSuchSlaveException
from pymodbus.pdu import ExceptionResponse

from firmware_sim.models.warning_sign import WarningSignModel

log = logging.getLogger(__name__)

COILS = 2
HOLDING = 5
MA_PER_A = 1000.0


class WarningSignSlave(ModbusBaseSlaveContext):
    """One sign behind a unit id; ``writes`` records every accepted write."""

    def __init__(self, model: WarningSignModel, clock: Callable[[], float]) -> None:
        self.model = model
        self.clock = clock
        self.writes: list[tuple[int, int, list[int]]] = []

    def reset(self) -> None:
        """Nothing to reset: the model is the state."""

    def getValues(self, fc_as_hex: int, address: int, count: int = 1) -> Sequence[int | bool] | int:  # type: ignore[override]
        t = self.clock()
        if not self.model.online(t):
            raise NoSuchSlaveException(f"{self.model.device_id} is offline")
        if fc_as_hex in (1, 5, 15):
            if address < 0 or address + count > COILS:
                return ExceptionResponse.ILLEGAL_ADDRESS
            return [self.model.lamp, self.model.siren][address : address + count]
        if fc_as_hex in (3, 6, 16):
            if address < 0 or address + count > HOLDING:
                return ExceptionResponse.ILLEGAL_ADDRESS
            return self._holding(t)[address : address + count]
        return ExceptionResponse.ILLEGAL_FUNCTION

    def _holding(self, t: float) -> list[int]:
        m = self.model
        current = min(0xFFFF, round(m.lamp_current(t) * MA_PER_A))
        return [m.pattern, m.heartbeat_value & 0xFFFF, current, m.status_bits(t), int(m.watchdog_s)]

    def setValues(self, fc_as_hex: int, address: int, values: Sequence[int | bool]) -> int | None:  # type: ignore[override]
        t = self.clock()
        if not self.model.online(t):
            raise NoSuchSlaveException(f"{self.model.device_id} is offline")
        if fc_as_hex in (5, 15):
            return self._coils(address, values)
        if fc_as_hex in (6, 16):
            return self._registers(address, values, t)
        return ExceptionResponse.ILLEGAL_FUNCTION

    def _coils(self, address: int, values: Sequence[int | bool]) -> int | None:
        if address < 0 or address + len(values) > COILS:
            return ExceptionResponse.ILLEGAL_ADDRESS
        for i, v in enumerate(values):
            self.model.write_coil(address + i, bool(v))
        self._record(5, address, [int(bool(v)) for v in values])
        return None

    def _registers(self, address: int, values: Sequence[int | bool], t: float) -> int | None:
        if address < 0 or address not in (0, 1) or address + len(values) > 2:
            return ExceptionResponse.ILLEGAL_ADDRESS
        try:
            for i, v in enumerate(values):
                self.model.write_holding(address + i, int(v), t)
        except ValueError as exc:
            log.warning("sign_write_refused device=%s reason=%s", self.model.device_id, exc)
            return ExceptionResponse.ILLEGAL_VALUE
        self._record(6, address, [int(v) for v in values])
        return None

    def _record(self, fc: int, address: int, values: list[int]) -> None:
        self.writes.append((fc, address, values))
        if fc != 6 or address != 1:  # heartbeats every poll would flood the log
            log.info("sign_write device=%s fc=%d address=%d values=%s",
                     self.model.device_id, fc, address, values)  # fmt: skip
