"""What a device accepts from the downlink: ``[[devices.actions]]`` in the gateway config.

A Modbus action writes one register entry of the device's map, with that entry's type,
byte order, scale and offset (so a write is the exact inverse of the read), and only if
the entry says ``writable = true``. A call unit accepts one action, ``notice``. Anything
a command asks beyond this is ``rejected`` with the reason (:func:`check_command`).

::

    [[devices.registers]]
    field = "pump1_running"
    function = "coil"
    address = 0
    type = "bool"
    writable = true          # without it, no command can ever write this register

    [[devices.actions]]
    name = "pump1"           # the Command's action
    field = "pump1_running"  # the register entry it writes
    allowed = [true, false]  # or min = ..., max = ... (engineering units)
    write_multiple = false   # FC 15/16 even for one coil/register (devices without 5/6)
"""

from __future__ import annotations

import math
import re
import struct
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.drivers.registry import spec
from schemas.commands import (
    ACTION_PATTERN,
    NOTICE_ACTION,
    NOTICE_KINDS,
    NOTICE_LEVEL_MAX,
    NOTICE_TEXT_MAX,
)
from schemas.commands import NOTICE_TEXT_FORBIDDEN as _NOTICE_TEXT_FORBIDDEN

if TYPE_CHECKING:
    from edge.config import Device, Register

NOTICE = NOTICE_ACTION
NOTICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,35}$")  # schemas CallUnitValues.notice_id
NOTICE_TEXT_FORBIDDEN = re.compile(_NOTICE_TEXT_FORBIDDEN)  # line separators and controls
# a flood camera's only action (edge/cameras): a picture at once, out of schedule
SNAPSHOT = "snapshot"
CAMERA_ACTIONS = (SNAPSHOT,)
# types that share a register with others: writing one would clobber its neighbours
_UNWRITABLE_TYPES = {"bit", "uint8", "bits", "bitfield", "string"}


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ACTION_PATTERN, description="The command's action, e.g. 'lamp'")
    field: str | None = Field(default=None, description="Modbus: the register entry written")
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    allowed: list[bool | int | float] | None = Field(default=None, min_length=1, max_length=64)
    write_multiple: bool = Field(default=False, description="FC 15/16 even for a single item")

    @model_validator(mode="after")
    def _bounds(self) -> Action:
        if (self.min is None) != (self.max is None):
            raise ValueError("give both 'min' and 'max', or neither")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.allowed is not None and self.min is not None:
            raise ValueError("give 'allowed' or 'min'/'max', not both")
        return self


def check_actions(where: str, dev: Device) -> None:
    """Config errors in a device's actions (``where`` names the device, as config.py does)."""
    names: set[str] = set()
    for j, act in enumerate(dev.actions):
        at = f"{where} -> actions[{j}]"
        if act.name in names:
            raise ValueError(f"{at}.name: duplicate action {act.name!r}")
        names.add(act.name)
        commands = spec(dev.driver).commands  # each driver declares what it accepts
        if commands == "notice":
            _check_notice(at, act)
        elif commands == "write":
            _check_write(at, dev, act)
        else:
            raise ValueError(f"{at}.name: driver {dev.driver} accepts no commands")


def _check_notice(at: str, act: Action) -> None:
    if act.name != NOTICE:
        raise ValueError(f"{at}.name: a call unit accepts only {NOTICE!r} (got {act.name!r})")
    if act.field is not None or act.min is not None or act.allowed is not None:
        raise ValueError(f"{at}.field: a notice takes no field, min, max or allowed")


def _check_write(at: str, dev: Device, act: Action) -> None:
    if act.field is None:
        raise ValueError(f"{at}.field: a Modbus action needs 'field' (the register it writes)")
    reg = register_for(dev, act.field)
    if reg is None:
        known = ", ".join(r.field for r in dev.registers if r.field)
        raise ValueError(f"{at}.field: no register entry for field {act.field!r} (known: {known})")
    if reg.function.value not in ("coil", "holding"):
        raise ValueError(
            f"{at}.field: {act.field!r} is read-only (function {reg.function.value}); Modbus "
            "writes only coils and holding registers"
        )
    if reg.type.value in _UNWRITABLE_TYPES:
        raise ValueError(
            f"{at}.field: {act.field!r} has type {reg.type.value!r}, which cannot be written "
            "alone (it shares its register or is text); map the output to a coil or a whole "
            "register"
        )
    if reg.type.value == "bool":
        if act.min is not None:
            raise ValueError(f"{at}.min: {act.field!r} is a coil (true/false); use 'allowed'")
        if act.allowed is not None and not all(isinstance(v, bool) for v in act.allowed):
            raise ValueError(f"{at}.allowed: a coil takes true or false (got {act.allowed!r})")
    else:
        if act.min is None and act.allowed is None:
            raise ValueError(
                f"{at}.min: a numeric action needs bounds: 'min' and 'max', or 'allowed'"
            )
        if act.allowed is not None and any(isinstance(v, bool) for v in act.allowed):
            raise ValueError(f"{at}.allowed: {act.field!r} is numeric (got {act.allowed!r})")


def register_for(dev: Device, field: str) -> Register | None:
    return next((r for r in dev.registers if r.field == field and r.bits is None), None)


def check_command(dev: Device, action: str, params: dict[str, Any]) -> tuple[Action, Any]:
    """The device's action and the checked value (Modbus) or params (notice).

    Raises ValueError with the reason a command is ``rejected``, naming field and value.
    """
    act = next((a for a in dev.actions if a.name == action), None)
    if act is None and action == SNAPSHOT:
        accepted = ", ".join(a.name for a in dev.actions) or "none"
        raise ValueError(
            f"action {SNAPSHOT!r} is for flood_camera devices; {dev.id!r} is a "
            f"{dev.kind.value} (accepts: {accepted})"
        )
    if act is None:
        accepted = ", ".join(a.name for a in dev.actions) or "none"
        raise ValueError(f"unknown action {action!r} for device {dev.id!r} (accepts: {accepted})")
    if act.name == NOTICE and act.field is None:
        return act, check_notice(params)
    assert act.field is not None
    reg = register_for(dev, act.field)
    assert reg is not None  # the config check guarantees it
    if not reg.writable:
        raise ValueError(
            f"register {act.field!r} ({reg.function.value} {reg.address}) is not marked writable"
        )
    return act, _check_value(act, reg, params)


def check_camera_command(camera_id: str, action: str, params: dict[str, Any]) -> None:
    """A flood camera accepts ``snapshot`` with no params; ValueError names what is wrong."""
    if action not in CAMERA_ACTIONS:
        raise ValueError(
            f"unknown action {action!r} for camera {camera_id!r} "
            f"(accepts: {', '.join(CAMERA_ACTIONS)})"
        )
    if params:
        raise ValueError(f"unknown param {sorted(params)[0]!r} ({action} takes none)")


def _only(params: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(params) - allowed)
    if extra:
        raise ValueError(f"unknown param {extra[0]!r} (takes: {', '.join(sorted(allowed))})")


def _check_value(act: Action, reg: Register, params: dict[str, Any]) -> Any:
    _only(params, {"value"})
    if "value" not in params:
        raise ValueError("param 'value' is required")
    value = params["value"]
    if reg.type.value == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"value {value!r} for {act.field!r}: a coil takes true or false")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"value {value!r} for {act.field!r} is not a number")
    elif _whole_only(reg) and isinstance(value, float) and not value.is_integer():
        raise ValueError(f"value {value!r} for {act.field!r} ({reg.type.value}) is not whole")
    if act.allowed is not None and not any(_same(value, a) for a in act.allowed):
        raise ValueError(f"value {value!r} for {act.field!r} is not one of {act.allowed!r}")
    if act.min is not None and act.max is not None and not act.min <= value <= act.max:
        raise ValueError(f"value {value!r} for {act.field!r} is out of range {act.min}..{act.max}")
    from edge.drivers.modbus import codec  # codec needs edge.config, which imports us

    try:
        codec.encode(reg, value)
    except (ValueError, OverflowError, struct.error) as exc:
        raise ValueError(
            f"value {value!r} for {act.field!r} does not fit {reg.type.value}"
        ) from exc
    return value


def _whole_only(reg: Register) -> bool:
    return reg.type.value not in ("float32", "float64") and reg.scale == 1.0 and reg.offset == 0.0


def _same(value: Any, allowed: Any) -> bool:
    if isinstance(value, bool) or isinstance(allowed, bool):
        return isinstance(value, bool) and isinstance(allowed, bool) and value == allowed
    return math.isclose(float(value), float(allowed), rel_tol=0, abs_tol=1e-9)


def check_notice(params: dict[str, Any]) -> dict[str, Any]:
    """``notice_id``, ``kind`` (heat | disaster), ``level`` (0-9, optional) and ``text``."""
    _only(params, {"notice_id", "kind", "level", "text"})
    nid = params.get("notice_id")
    if not isinstance(nid, str) or not NOTICE_ID.match(nid):
        raise ValueError(f"notice_id {nid!r} must match {NOTICE_ID.pattern}")
    kind = params.get("kind")
    if kind not in NOTICE_KINDS:
        raise ValueError(f"kind {kind!r} must be one of {', '.join(NOTICE_KINDS)}")
    level = params.get("level", 0)
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= NOTICE_LEVEL_MAX:
        raise ValueError(f"level {level!r} must be an integer 0..{NOTICE_LEVEL_MAX}")
    text = params.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= NOTICE_TEXT_MAX:
        shown = text if not isinstance(text, str) else f"{len(text)} characters"
        raise ValueError(f"text ({shown!r}) must be 1..{NOTICE_TEXT_MAX} characters")
    bad = NOTICE_TEXT_FORBIDDEN.search(text)
    if bad:
        raise ValueError(f"text may not contain {bad.group()!r} (the line protocol's separators)")
    return {"notice_id": nid, "kind": kind, "level": level, "text": text}
