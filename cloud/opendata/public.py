"""Which devices the public endpoints may show: those of a kind in
``opendata.public_kinds`` (see :mod:`cloud.opendata.settings`).

Every public route reads devices through :func:`public_devices` (or asks
:func:`is_public_device`), so a kind left out of the setting is left out everywhere.
A device the registry does not know is treated as private: fail safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from cloud.db.models import DeviceRow
from cloud.opendata.settings import DEFAULT_PUBLIC_KINDS
from schemas.devices import DeviceKind
from schemas.wire import DeviceInfo


def public_kinds(service: Any) -> frozenset[DeviceKind]:
    """The configured public kinds; the default when the service has no settings."""
    opendata = getattr(getattr(service, "settings", None), "opendata", None)
    kinds = getattr(opendata, "public_kinds", None)
    return frozenset(DEFAULT_PUBLIC_KINDS if kinds is None else kinds)


def public_devices(service: Any) -> dict[str, DeviceInfo]:
    """The registered devices of a public kind."""
    allowed = public_kinds(service)
    devices: Mapping[str, DeviceInfo] = service.devices()
    return {d: info for d, info in devices.items() if info.kind in allowed}


def is_public_device(service: Any, device_id: str | None) -> bool:
    """True when ``device_id`` is registered with a public kind (unknown: False).

    Reads the relational registry directly, so callers holding only a sessionmaker
    (the CAP feed's tests) get the same answer as the service."""
    if device_id is None:
        return False
    with service.sessionmaker() as s:
        kind = s.scalar(select(DeviceRow.kind).where(DeviceRow.device_id == device_id))
    return is_public_kind(service, kind)


def is_public_kind(service: Any, kind: str | None) -> bool:
    return kind is not None and kind in {k.value for k in public_kinds(service)}
