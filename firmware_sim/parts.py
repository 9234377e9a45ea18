"""The simulator's part of each device kind, registered by the kind's name.

A kind's simulator part says how often its devices are sampled (the export's and the
generated edge config's poll interval) and, for a device the simulator serves over
Modbus, its register map (what the server answers and what the edge config reads),
the transport a scenario fleet serves its devices over, and the hooks the export and the
generated edge configs need for a kind that is not a plain sampled register device.
Parts come from this package's ``kinds/<kind>.py`` modules (found by listing the
folder) and from a kind plugin's ``sim`` submodule (:func:`schemas.kinds.load_layer`),
as the detector parts do in ``cloud/detect/parts.py``; nothing else keeps a table of
kinds. A kind without a part is not simulated (its devices come from real hardware or
a test's own server).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from firmware_sim.registers import RegisterMap
from schemas.kinds import KINDS, UnknownKind, load_layer

if TYPE_CHECKING:  # plan imports this module: the hooks' types only
    from firmware_sim.models.base import DeviceModel
    from firmware_sim.plan import SimDevice

LAYER = "sim"


class Transport(StrEnum):
    """How a fleet serves a kind's devices; a gateway's devices are placed in this order
    (the generated edge configs depend on it, so it is part of the seeded output)."""

    MODBUS_TCP = "modbus_tcp"  # one listener per gateway, a unit id per device
    MODBUS_RTU = "modbus_rtu"  # one RTU bus (a pty) per gateway, a unit id per device
    NMEA = "nmea"  # one NMEA stream per device
    AKCU = "akcu"  # one call-unit concentrator line per gateway


_MODBUS = (Transport.MODBUS_TCP, Transport.MODBUS_RTU)

# (model, t0, t1) -> the (time, values) of the messages it sends in [t0, t1)
Events = Callable[["DeviceModel", float, float], Iterable[tuple[float, dict[str, Any]]]]
# device -> the extra [[devices]] keys of its generated edge config
EdgeKeys = Callable[["SimDevice"], dict[str, Any]]


@dataclass(frozen=True)
class SimPart:
    kind: str
    poll_s: float  # simulated seconds between samples (also the export resolution)
    registers: RegisterMap | None = None  # served over Modbus with this map
    # the scenario fleets (firmware_sim/plan.py) build this kind's devices with their own
    # physics and faults; a part without it is used by code that asks the registry
    fleet: bool = False
    transport: Transport | None = None  # None: a fleet cannot serve it
    # a kind that speaks on events: the export writes its messages instead of samples
    events: Events | None = None
    edge_keys: EdgeKeys | None = None


_PARTS: dict[str, SimPart] = {}
_loaded = False


class NoSimPart(KeyError):
    def __str__(self) -> str:
        return f"no simulator part for kind {self.args[0]!r} (simulated: {', '.join(_PARTS)})"


def register(part: SimPart) -> SimPart:
    if part.kind not in KINDS:
        raise UnknownKind(part.kind)
    if not part.poll_s > 0:
        raise ValueError(f"simulator part {part.kind!r}: poll_s must be > 0 (got {part.poll_s})")
    if part.transport in _MODBUS and part.registers is None:
        raise ValueError(f"simulator part {part.kind!r}: {part.transport} needs a register map")
    known = _PARTS.get(part.kind)
    if known is not None and known != part:
        raise ValueError(f"simulator part for kind {part.kind!r} registered twice")
    _PARTS[part.kind] = part
    return part


def parts() -> Mapping[str, SimPart]:
    """Kind -> its part, loading ``firmware_sim/kinds/`` and the plugins' once."""
    global _loaded
    if not _loaded:
        _loaded = True  # first: a part module may look the registry up while it loads
        from firmware_sim import kinds

        for m in pkgutil.iter_modules(kinds.__path__):
            importlib.import_module(f"{kinds.__name__}.{m.name}")
        load_layer(LAYER)
    return _PARTS


def part(kind: str) -> SimPart:
    try:
        return parts()[str(kind)]
    except KeyError:
        raise NoSimPart(str(kind)) from None


def poll_s(kind: str) -> float:
    return part(kind).poll_s


def register_map(kind: str) -> RegisterMap | None:
    """The kind's Modbus register map, or None for a kind served otherwise (lines)."""
    return part(kind).registers


def transport(kind: str) -> Transport:
    """How a fleet serves the kind's devices; a kind without one cannot be in a fleet."""
    found = part(kind).transport
    if found is None:
        raise ValueError(
            f"simulator part {str(kind)!r} declares no transport: a fleet cannot serve it"
        )
    return found
