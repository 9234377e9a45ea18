"""Wire and data contracts shared by the edge gateway and the cloud ingest.

Everything that crosses MQTT is defined here and nowhere else: the gateway batch
envelope (:class:`Batch`), the per-kind readings, device and gateway status, the
alert record and the topic scheme (:mod:`schemas.topics`). Edge and cloud both
import this package; neither redefines a wire model.

JSON Schema copies of the models live in ``schemas/json/`` and are regenerated
with ``akita schemas export``.
"""

from schemas.alert import Alert, AlertState, Severity
from schemas.codec import decode_batch, encode_batch, encode_model
from schemas.commands import (
    FINAL_STATES,
    Command,
    CommandPriority,
    CommandResult,
    CommandState,
)
from schemas.devices import (
    CallUnitEvent,
    CallUnitValues,
    DeviceKind,
    FloodSensorValues,
    ManholePumpValues,
    VehicleType,
    VehicleValues,
    WaterBlockValues,
    field_unit,
    values_model,
)
from schemas.errors import AkitaError, WireError
from schemas.wire import (
    Batch,
    CallUnitReading,
    DeadLetter,
    DeviceInfo,
    DeviceState,
    DeviceStatus,
    ExtraField,
    FloodSensorReading,
    GatewayHealth,
    GatewayMeta,
    GatewayState,
    GatewayStatus,
    ManholePumpReading,
    Reading,
    VehicleReading,
    WaterBlockReading,
    reading_adapter,
)

__all__ = [
    "FINAL_STATES",
    "AkitaError",
    "Alert",
    "AlertState",
    "Batch",
    "CallUnitEvent",
    "CallUnitReading",
    "CallUnitValues",
    "Command",
    "CommandPriority",
    "CommandResult",
    "CommandState",
    "DeadLetter",
    "DeviceInfo",
    "DeviceKind",
    "DeviceState",
    "DeviceStatus",
    "ExtraField",
    "FloodSensorReading",
    "FloodSensorValues",
    "GatewayHealth",
    "GatewayMeta",
    "GatewayState",
    "GatewayStatus",
    "ManholePumpReading",
    "ManholePumpValues",
    "Reading",
    "Severity",
    "VehicleReading",
    "VehicleType",
    "VehicleValues",
    "WaterBlockReading",
    "WaterBlockValues",
    "WireError",
    "decode_batch",
    "encode_batch",
    "encode_model",
    "field_unit",
    "reading_adapter",
    "values_model",
]
