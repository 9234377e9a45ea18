"""Field drivers register themselves here, by name; nothing else keeps a table of them.

Each driver package in this folder has a small ``spec`` module (``modbus/spec.py`` ...)
that calls :func:`register` with a :class:`DriverSpec`: the name a config's ``driver =``
takes, how to build the driver, and what that driver needs of a ``[[devices]]`` table.
The folder is listed once, on first use; a driver shipped outside this repository is
named by an ``akita.drivers`` entry point (a module that registers on import). The spec
modules import no protocol library: pymodbus or pyserial load only when ``make`` runs.

Adding a driver is one folder with a ``spec.py``: :func:`edge.drivers.create` and the
config's validation (``edge.config.Device``) read this registry.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from edge.config import Device, EdgeConfig
    from edge.drivers.base import PollDriver, StreamDriver

ENTRY_POINT_GROUP = "akita.drivers"
# what ``[[devices.actions]]`` of the driver's devices may do (edge/actions.py)
Commands = Literal["write", "notice", "none"]


def _accepts_any(device: Device) -> None:
    """The default check: the driver needs nothing beyond the common device keys."""


@dataclass(frozen=True)
class DriverSpec:
    """``check`` raises ValueError naming the key a device of this driver lacks or gets
    wrong. ``kinds``: the only device kinds it reads (empty: any). ``unit_id_required``:
    a config must give ``unit_id`` (a Modbus slave id must never default to 1: on a
    shared bus that is another device). ``uses_bus``: ``bus`` names a ``[[buses]]``
    entry whose unit ids must be unique. ``commands``: ``write`` (registers, read back),
    ``notice`` (a text notice on a line) or ``none``."""

    name: str
    make: Callable[[Device, EdgeConfig], PollDriver | StreamDriver]
    check: Callable[[Device], None] = _accepts_any
    kinds: tuple[str, ...] = ()
    unit_id_required: bool = False
    uses_bus: bool = False
    takes_registers: bool = False
    commands: Commands = "none"


_SPECS: dict[str, DriverSpec] = {}
_loaded = False


class UnknownDriver(ValueError):
    """A ``driver = "..."`` nobody registered; the message names it and the known ones."""

    def __init__(self, name: object) -> None:
        super().__init__(f"unknown driver {name!r} (known: {', '.join(names())})")
        self.name = name


def register(spec: DriverSpec) -> DriverSpec:
    known = _SPECS.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"driver {spec.name!r} registered twice")
    _SPECS[spec.name] = spec
    return spec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True  # first: a spec module may look the registry up while it loads
    import edge.drivers as package

    for m in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        name = f"{package.__name__}.{m.name}.spec"
        if m.ispkg and importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        importlib.import_module(ep.value)


def specs() -> Mapping[str, DriverSpec]:
    _load()
    return _SPECS


def names() -> list[str]:
    return sorted(specs())


def spec(name: str) -> DriverSpec:
    """The driver called ``name``; :class:`UnknownDriver` names the known ones."""
    try:
        return specs()[name]
    except KeyError:
        raise UnknownDriver(name) from None


def needs_line(device: Device) -> None:
    """A line driver's check: a serial port or a TCP stream, and no registers."""
    if device.registers:
        raise ValueError(f"driver {device.driver} takes no registers")
    if not device.serial_port and not (device.host and device.port):
        raise ValueError(f"driver {device.driver} needs 'serial_port', or 'host' and 'port'")
