"""The simulated warning sign's controller: writable outputs only, and the watchdog
fallback to its float switch when the gateway's heartbeat stops."""

from __future__ import annotations

from pymodbus.pdu import ExceptionResponse

from firmware_sim.models.warning_sign import STANDBY_A, STEADY_A, WarningSignModel
from firmware_sim.servers.warning_sign import WarningSignSlave


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_only_outputs_pattern_and_heartbeat_take_writes() -> None:
    clock = Clock()
    unit = WarningSignSlave(WarningSignModel(device_id="s", key=0), clock)
    assert unit.setValues(5, 0, [True]) is None
    assert unit.getValues(1, 0, 2) == [True, False]
    assert unit.setValues(5, 2, [True]) == ExceptionResponse.ILLEGAL_ADDRESS
    assert unit.setValues(6, 2, [5]) == ExceptionResponse.ILLEGAL_ADDRESS  # the current
    assert unit.setValues(6, 0, [9]) == ExceptionResponse.ILLEGAL_VALUE  # no pattern 9
    assert unit.setValues(6, 0, [0]) is None
    assert unit.getValues(3, 2, 1) == [round(STEADY_A * 1000)]
    assert unit.setValues(2, 0, [1]) == ExceptionResponse.ILLEGAL_FUNCTION


def test_watchdog_hands_the_lamp_to_the_float_switch_and_back() -> None:
    clock = Clock()
    wet = {"now": False}
    model = WarningSignModel(device_id="s", key=0, watchdog_s=60, float_wet=lambda t: wet["now"])
    unit = WarningSignSlave(model, clock)
    clock.t += 1000
    assert not model.fallback(clock.t)  # never armed: no heartbeat written yet
    unit.setValues(6, 1, [1])  # heartbeat
    unit.setValues(5, 1, [True])  # siren on from the gateway
    clock.t += 59
    assert not model.fallback(clock.t) and model.outputs(clock.t) == (False, True, 0)
    clock.t += 1  # heartbeat silent for the watchdog time
    assert model.fallback(clock.t)
    assert model.outputs(clock.t) == (False, False, 2)  # dry: dark and silent
    assert unit.getValues(3, 3, 1) == [0b01]
    wet["now"] = True
    assert model.outputs(clock.t) == (True, False, 2)
    assert unit.getValues(3, 2, 2) == [round(STEADY_A / 2 * 1000), 0b11]
    unit.setValues(6, 1, [2])  # the gateway is back
    assert model.outputs(clock.t) == (False, True, 0)  # its coils apply again
    assert model.lamp_current(clock.t) == STANDBY_A
