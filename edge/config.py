"""Gateway configuration (TOML), validated in three stages.

1. Declarative schema (pydantic): types, ranges, unknown keys refused.
2. Per-type legality: which register options fit which data type and function.
3. Semantic pass: duplicate ids, fields that the device kind does not have,
   overlapping registers, buses that do not exist, impossible timings.

Every error names the file, the line and column, the device and the field, e.g.
``edge.toml:58:3: devices[3] (id 'wb-07') -> registers.1.type: Input should be
'int16', 'uint16', ... (got 'float')``. A key that is missing points at its table.

See ``deploy/edge/*.toml`` for one sample per device kind.
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.actions import Action, check_actions
from edge.cameras.config import Cameras
from edge.cameras.devices import check_cameras
from edge.drivers.registry import UnknownDriver, spec
from edge.errors import ConfigError
from edge.toml_position import position
from schemas.devices import DeviceKind, VehicleType, values_model
from schemas.wire import ID_PATTERN


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Function(StrEnum):
    COIL = "coil"
    DISCRETE = "discrete"
    HOLDING = "holding"
    INPUT = "input"


class DataType(StrEnum):
    BOOL = "bool"  # a coil or discrete input
    BIT = "bit"  # one bit of a 16-bit register (packed status words)
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    UINT8 = "uint8"  # the high or low byte of one register ('byte')
    BITS = "bits"  # (register & mask) >> shift, e.g. a 4-bit mode in a status word
    BITFIELD = "bitfield"  # named bits of one register -> one boolean field each ('bits')


REGISTER_COUNT = {
    DataType.BIT: 1,
    DataType.UINT8: 1,
    DataType.BITS: 1,
    DataType.BITFIELD: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.FLOAT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT64: 4,
}


_IN_ONE_REGISTER = {DataType.UINT8, DataType.BITS, DataType.BITFIELD}


class ByteOrder(StrEnum):
    """Order of the bytes of a multi-register value, A being the most significant.

    ABCD: big-endian words, high word first (Modbus default).
    CDAB: low word first, bytes within a word big-endian (common in flow meters).
    BADC: high word first, bytes swapped within each word.
    DCBA: fully little-endian.
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


class Byte(StrEnum):
    HIGH = "high"  # bits 15-8
    LOW = "low"  # bits 7-0


class Register(_Cfg):
    field: str = Field(
        default="",
        description="Field of the device kind's values model, e.g. 'flow' (not for 'bitfield')",
    )
    function: Function = Function.HOLDING
    address: int = Field(ge=0, le=65535, description="0-based protocol address")
    type: DataType = DataType.UINT16
    order: ByteOrder = ByteOrder.ABCD
    bit: int | None = Field(default=None, ge=0, le=15, description="Bit index, for type 'bit'")
    length: int | None = Field(default=None, ge=1, le=64, description="Registers, for 'string'")
    byte: Byte | None = Field(default=None, description="For 'uint8': the high or low byte")
    mask: int | None = Field(default=None, ge=1, le=0xFFFF, description="For 'bits'")
    shift: int = Field(default=0, ge=0, le=15, description="For 'bits': applied after the mask")
    bits: dict[str, int] | None = Field(
        default=None, description="For 'bitfield': boolean field name -> bit index 0-15"
    )
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = Field(default=None, description="Informational; the wire unit is fixed")
    deadband: float = Field(default=0.0, ge=0, description="Report-on-change threshold")
    writable: bool = Field(default=False, description="Commands may write it ([[devices.actions]])")

    @model_validator(mode="after")
    def _legal_for_type(self) -> Register:
        bitwise = self.function in (Function.COIL, Function.DISCRETE)
        if bitwise and self.type is not DataType.BOOL:
            raise ValueError(f"type must be 'bool' for a {self.function.value} (got {self.type})")
        if not bitwise and self.type is DataType.BOOL:
            raise ValueError(
                f"type 'bool' needs function coil or discrete (got {self.function.value}); "
                "use type 'bit' with 'bit = N' for a bit of a register"
            )
        if (self.type is DataType.BIT) != (self.bit is not None):
            raise ValueError("'bit' is required for type 'bit' and only allowed there")
        if (self.type is DataType.STRING) != (self.length is not None):
            raise ValueError("'length' is required for type 'string' and only allowed there")
        if (self.type is DataType.UINT8) != (self.byte is not None):
            raise ValueError("'byte' (high or low) is required for type 'uint8' and only there")
        if (self.type is DataType.BITS) != (self.mask is not None):
            raise ValueError("'mask' is required for type 'bits' and only allowed there")
        if self.type in _IN_ONE_REGISTER and self.order is not ByteOrder.ABCD:
            raise ValueError(
                f"'order' does not apply to type '{self.type.value}' (it reads inside one "
                "register; pick the byte or bits as the device holds them)"
            )
        if self.shift and self.type is not DataType.BITS:
            raise ValueError("'shift' is only allowed for type 'bits'")
        if self.writable and self.function in (Function.DISCRETE, Function.INPUT):
            raise ValueError(f"a {self.function.value} register cannot be writable (read-only)")
        self._legal_bitfield()
        return self

    def _legal_bitfield(self) -> None:
        if (self.type is DataType.BITFIELD) != (self.bits is not None):
            raise ValueError("'bits' is required for type 'bitfield' and only allowed there")
        if self.bits is None:
            if not self.field:
                raise ValueError("'field' is required")
            return
        if self.field:
            raise ValueError("a 'bitfield' names its fields in 'bits', not in 'field'")
        if not self.bits:
            raise ValueError("'bits' must name at least one field")
        for name, index in self.bits.items():
            if not 0 <= index <= 15:
                raise ValueError(f"bits.{name}: bit {index} is not 0..15")
        if len(set(self.bits.values())) != len(self.bits):
            raise ValueError("'bits' maps two fields to the same bit")

    @property
    def fields(self) -> list[str]:
        """The fields this register fills: one, or one per named bit of a bitfield."""
        return list(self.bits) if self.bits is not None else [self.field]

    @property
    def count(self) -> int:
        """How many registers (or bits, for coils) this value spans."""
        if self.type is DataType.BOOL:
            return 1
        if self.type is DataType.STRING:
            assert self.length is not None
            return self.length
        return REGISTER_COUNT[self.type]


class ExtraField(_Cfg):
    """A diagnostic value the device kind lacks (a meter's temperature, signal quality).

    Read, range-checked, shown by ``akita edge check`` and published in the reading's
    ``extra`` (declared to the cloud in the gateway's meta). With ``min``/``max`` it is a
    number, without a flag (true/false). ``invalidates``: fields whose value cannot be
    trusted while this one is set (a flag true, a number not 0), e.g. a flow meter's
    "no signal" error bit and its flow: they are sent as quality flags, not as numbers.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    unit: str | None = Field(default=None, max_length=20)
    min: float | None = Field(default=None, allow_inf_nan=False, ge=-1e15, le=1e15)
    max: float | None = Field(default=None, allow_inf_nan=False, ge=-1e15, le=1e15)
    description: str = Field(default="", max_length=200)
    invalidates: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _range(self) -> ExtraField:
        if (self.min is None) != (self.max is None):
            raise ValueError("give both 'min' and 'max', or neither")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Report(StrEnum):
    ON_CHANGE = "on_change"
    PERIOD = "period"
    ON_CHANGE_OR_PERIOD = "on_change_or_period"


class Bus(_Cfg):
    """A serial line (RS-485, RS-232 or a pty) that one or more devices share."""

    name: str = Field(pattern=ID_PATTERN)
    port: str = Field(description="Serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    pause_s: float = Field(default=0.005, ge=0, le=5, description="Quiet time between frames")


class Device(_Cfg):
    id: str = Field(pattern=ID_PATTERN)
    kind: DeviceKind
    driver: str = Field(description="A registered driver (edge/drivers/*/spec.py)")
    # where it is
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    bus: str | None = Field(default=None, description="Name of a [[buses]] entry (modbus_rtu)")
    serial_port: str | None = Field(default=None, description="Serial device (nmea, call_unit)")
    baudrate: int = Field(default=9600, gt=0)
    unit_id: int = Field(
        default=1, ge=0, le=65535, description="Modbus slave (0-255) / AKCU unit id (1-65535)"
    )
    # how to poll it (seconds of device time; see [gateway] clock_file)
    poll_interval_s: float = Field(default=1.0, gt=0, le=86_400)
    timeout_s: float = Field(default=1.0, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0, le=600, description="First retry delay; doubles")
    pause_s: float = Field(default=0.0, ge=0, le=10, description="Pause between requests")
    report: Report = Report.ON_CHANGE_OR_PERIOD
    report_period_s: float = Field(default=60.0, gt=0)
    offline_after: int = Field(default=3, ge=1, le=100, description="Failed polls to offline")
    registers: list[Register] = Field(default_factory=list)
    extra_fields: list[ExtraField] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list, description="What commands may do")
    # what it is (goes into the retained meta message)
    site: str | None = None
    district: str | None = None
    area: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    vehicle_type: VehicleType | None = None
    route_id: str | None = None

    @field_validator("driver")
    @classmethod
    def _registered(cls, name: str) -> str:
        try:
            spec(name)
        except UnknownDriver as exc:
            raise ValueError(str(exc)) from None
        return name

    @model_validator(mode="before")
    @classmethod
    def _unit_id_given(cls, data: Any) -> Any:
        # a forgotten unit_id used to poll slave 1: on a shared bus that is another device
        if (
            not isinstance(data, dict)
            or "unit_id" in data
            or not isinstance(data.get("driver"), str)
        ):
            return data
        try:
            required = spec(data["driver"]).unit_id_required
        except UnknownDriver:
            return data  # the driver field's own check says so
        if required:
            raise ValueError(f"driver {data['driver']} needs 'unit_id' (the Modbus slave id)")
        return data

    @model_validator(mode="after")
    def _legal_for_driver(self) -> Device:
        driver = spec(self.driver)
        driver.check(self)
        if driver.kinds and self.kind.value not in driver.kinds:
            raise ValueError(
                f"driver {self.driver} reads {' or '.join(driver.kinds)} "
                f"(got kind {self.kind.value!r})"
            )
        if self.registers and not driver.takes_registers:
            raise ValueError(f"driver {self.driver} takes no registers")
        if self.timeout_s > self.poll_interval_s * 10:
            raise ValueError(
                f"timeout_s {self.timeout_s} exceeds 10 poll intervals ({self.poll_interval_s})"
            )
        return self


class Mqtt(_Cfg):
    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str | None = None
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    password_file: Path | None = Field(default=None, description="Read the password from here")
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _auth(self) -> Mqtt:
        if self.password and self.password_file:
            raise ValueError("give 'password' or 'password_file', not both")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both 'cert_file' and 'key_file'")
        if (self.ca_file or self.cert_file) and not self.tls:
            raise ValueError("'ca_file'/'cert_file' given but tls = false")
        return self

    def secret(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return self.password


class Overflow(StrEnum):
    DROP_OLDEST = "drop_oldest"


class Gateway(_Cfg):
    id: str = Field(pattern=ID_PATTERN)
    spool_path: Path = Path("/var/lib/akita/spool.db")
    spool_max_readings: int = Field(default=2_000_000, ge=1000)
    overflow: Overflow = Overflow.DROP_OLDEST
    batch_max_readings: int = Field(default=500, ge=1, le=10_000)
    batch_max_delay_s: float = Field(default=1.0, gt=0, le=60)
    health_interval_s: float = Field(default=30.0, gt=0)
    clock_file: Path | None = Field(default=None, description="Simulated clock (firmware_sim)")


class EdgeConfig(_Cfg):
    gateway: Gateway
    mqtt: Mqtt = Mqtt()
    buses: list[Bus] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    cameras: Cameras | None = Field(default=None, description="Flood cameras (docs/cameras.md)")

    @model_validator(mode="after")
    def _semantics(self) -> EdgeConfig:
        _check_unique("buses", [b.name for b in self.buses])
        _check_unique("devices", [d.id for d in self.devices])
        bus_names = {b.name for b in self.buses}
        for i, dev in enumerate(self.devices):
            where = f"devices[{i}] (id {dev.id!r})"
            if dev.bus is not None and dev.bus not in bus_names:
                raise ValueError(f"{where} -> bus: no [[buses]] entry named {dev.bus!r}")
            _check_registers(where, dev)
            check_actions(where, dev)
        _check_shared_unit_ids(self.devices)
        if self.cameras is not None:
            check_cameras(self.cameras, [d.id for d in self.devices])
        return self


def _check_unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"{what}: duplicate id {n!r}")
        seen.add(n)


_SHARED_REGISTER = {DataType.BIT, DataType.UINT8, DataType.BITS, DataType.BITFIELD}


def _check_registers(where: str, dev: Device) -> None:
    standard = list(values_model(dev.kind).model_fields)
    extras = [x.name for x in dev.extra_fields]
    for k, name in enumerate(extras):
        if name in standard:
            raise ValueError(
                f"{where} -> extra_fields[{k}].name: {name!r} is a standard field of "
                f"{dev.kind.value}; map it directly"
            )
    _check_unique(f"{where} -> extra_fields", extras)
    fields = standard + extras
    for k, extra in enumerate(dev.extra_fields):
        if "__" in extra.name:
            raise ValueError(
                f"{where} -> extra_fields[{k}].name: {extra.name!r} has '__', kept for the "
                "names of quality flags (flow__quality)"
            )
        for target in extra.invalidates:
            if target not in fields or target == extra.name:
                raise ValueError(
                    f"{where} -> extra_fields[{k}].invalidates: {target!r} is not another "
                    f"field of the device (known: {', '.join(fields)})"
                )
    spans: dict[Function, list[tuple[int, int, int]]] = {}
    for j, reg in enumerate(dev.registers):
        for name in reg.fields:
            if name not in fields:
                key = "field" if reg.bits is None else f"bits.{name}"
                raise ValueError(
                    f"{where} -> registers[{j}].{key}: {dev.kind.value} has no field {name!r} "
                    f"(known: {', '.join(fields)}; declare others in [[devices.extra_fields]])"
                )
        _check_extra_type(where, j, reg, dev)
        if reg.type in _SHARED_REGISTER:
            continue  # several bits or bytes may share one register
        for start, end, k in spans.get(reg.function, []):
            if reg.address < end and start < reg.address + reg.count:
                raise ValueError(
                    f"{where} -> registers[{j}].address: {reg.address} overlaps registers[{k}]"
                )
        spans.setdefault(reg.function, []).append((reg.address, reg.address + reg.count, j))


_FLAG_TYPES = {DataType.BOOL, DataType.BIT, DataType.BITFIELD}


def _check_extra_type(where: str, j: int, reg: Register, dev: Device) -> None:
    """An extra field with min/max is a number, without them a flag: its register agrees."""
    ranged = {x.name: x.min is not None for x in dev.extra_fields}
    for name in reg.fields:
        if name not in ranged or ranged[name] == (reg.type not in _FLAG_TYPES):
            continue
        what = "a number (it has min/max)" if ranged[name] else "a flag (it has no min/max)"
        raise ValueError(
            f"{where} -> registers[{j}].type: extra field {name!r} is {what}, but type "
            f"{reg.type.value!r} reads {'a flag' if ranged[name] else 'a number'}"
        )


def _check_shared_unit_ids(devices: list[Device]) -> None:
    seen: dict[tuple[str, int], str] = {}
    for dev in devices:
        if dev.bus and spec(dev.driver).uses_bus:
            key = (dev.bus, dev.unit_id)
            if key in seen:
                raise ValueError(
                    f"devices {seen[key]!r} and {dev.id!r} share unit_id {dev.unit_id} "
                    f"on bus {dev.bus!r}"
                )
            seen[key] = dev.id


def _format(exc: ValidationError, data: dict[str, Any], source: str, text: str | None) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in loc) or "<root>"
        if len(loc) >= 2 and loc[0] == "devices" and isinstance(loc[1], int):
            dev_id = _device_id(data, loc[1])
            rest = ".".join(str(p) for p in loc[2:]) or "<device>"
            where = f"devices[{loc[1]}] (id {dev_id!r}) -> {rest}"
        got = "" if err["type"] == "value_error" else f" (got {err.get('input')!r})"
        at = _at(source, text, loc or _path_in(msg))
        lines.append(f"{at}: {where}: {msg}{got}" if loc else f"{at}: {msg}")
    return "\n".join(lines)


_NAMED = re.compile(r"^devices\[(\d+)\][^>]*-> (\w+)(?:\[(\d+)\])?(?:\.(\w+))?")
_CAMERA = re.compile(r"^cameras\.cameras\[(\d+)\][^>]*-> (\w+)")


def _path_in(msg: str) -> tuple[str | int, ...]:
    """The key path a semantic error names in its text ("devices[3] (...) -> bus: ...")."""
    cam = _CAMERA.match(msg)
    if cam is not None:
        return ("cameras", "cameras", int(cam.group(1)), cam.group(2))
    m = _NAMED.match(msg)
    if m is None:
        return ()
    path: tuple[str | int, ...] = ("devices", int(m.group(1)), m.group(2))
    if m.group(3) is not None:
        path += (int(m.group(3)),)
    if m.group(4) is not None:
        path += (m.group(4),)
    return path


def _at(source: str, text: str | None, path: tuple[str | int, ...]) -> str:
    """``file:line:column`` when the key (or its table) can be found in the source text."""
    pos = position(text, path) if text is not None and path else None
    return source if pos is None else f"{source}:{pos[0]}:{pos[1]}"


def _device_id(data: dict[str, Any], index: int) -> str:
    try:
        return str(data["devices"][index]["id"])
    except (KeyError, IndexError, TypeError):
        return "?"


def parse_config(
    data: dict[str, Any], *, source: str = "<config>", text: str | None = None
) -> EdgeConfig:
    """Validate parsed TOML; ``text`` (the source) lets errors give line and column."""
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(exc, data, source, text), path=source) from exc


def load_config(path: Path) -> EdgeConfig:
    """Read and validate a gateway config; raises ConfigError naming file, device and field."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file", path=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", path=str(path)) from exc
    return parse_config(data, source=str(path), text=text)
