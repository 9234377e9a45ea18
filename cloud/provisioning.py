"""Provisioning: which gateway owns which device, written by staff, never by gateways.

The relational ``devices`` table is the authority (``DeviceRow.gateway_id`` and
``DeviceRow.kind``). ``akita cloud device add|move|remove|list|import`` and the admin
API routes call the functions here; each change bumps the one-row ``registry_version``
table in the same transaction, and every ingest worker polls that row (every ~2 s,
:meth:`cloud.registry.Registry.refresh`) and reloads its in-memory view when it moved,
so a move takes effect without restarting anything.

``import`` reads a gateway's own configuration file (the edge TOML: ``[gateway] id`` and
the ``[[devices]]`` tables) with :mod:`tomllib`, or its retained meta as JSON. It never
imports ``edge``: only the keys the wire's :class:`~schemas.DeviceInfo` knows are read.
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import DeviceRow, RegistryVersionRow
from cloud.errors import CloudError
from schemas import DeviceInfo, ExtraField, GatewayMeta
from schemas.codec import describe
from schemas.topics import check_gateway_id

log = logging.getLogger(__name__)

# the DeviceInfo keys a gateway's TOML [[devices]] table shares with the wire
_INFO_KEYS = ("kind", "site", "district", "area", "lat", "lon", "poll_interval_s", "vehicle_type")


class ProvisioningError(CloudError):
    """A provisioning request that cannot be done; the message names the device or field."""


class DeviceNotFound(ProvisioningError):
    """The device is not registered."""


@dataclass(frozen=True)
class Provisioned:
    """One device as provisioned: its owner and kind, and the descriptive fields."""

    device_id: str
    kind: str
    gateway_id: str | None
    site: str | None = None
    district: str | None = None
    area: str | None = None


def bump_version(session: Session) -> None:
    """Tell every ingest worker that the registry changed (same transaction)."""
    moved = session.execute(
        update(RegistryVersionRow)
        .where(RegistryVersionRow.id == 1)
        .values(version=RegistryVersionRow.version + 1)
    )
    if moved.rowcount == 0:  # type: ignore[attr-defined]
        session.add(RegistryVersionRow(id=1, version=1))


def read_version(sm: sessionmaker[Session]) -> int:
    with sm() as session:
        value = session.scalar(select(RegistryVersionRow.version).where(RegistryVersionRow.id == 1))
    return value or 0


def _gateway(gateway_id: str) -> str:
    try:
        return check_gateway_id(gateway_id)
    except ValueError as exc:
        raise ProvisioningError(f"gateway: {exc}") from exc


def _write(sm: sessionmaker[Session], work: Any) -> Any:
    """Run ``work(session)`` in one transaction with the version bump (retried once:
    two processes creating the version row at once)."""
    for attempt in (1, 2):
        try:
            with sm.begin() as session:
                result = work(session)
                bump_version(session)
                return result
        except IntegrityError:
            if attempt == 2:
                raise
        except SQLAlchemyError as exc:
            raise ProvisioningError(f"registry database: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def add_device(sm: sessionmaker[Session], info: DeviceInfo, gateway_id: str) -> Provisioned:
    """Register a new device owned by ``gateway_id``; refuse one that exists."""
    gateway_id = _gateway(gateway_id)

    def work(session: Session) -> Provisioned:
        row = session.get(DeviceRow, info.device_id)
        if row is not None and row.gateway_id is not None:
            raise ProvisioningError(
                f"device {info.device_id!r} exists (owned by {row.gateway_id!r}); "
                "use `akita cloud device move` to change its gateway"
            )
        if row is None:
            row = DeviceRow(device_id=info.device_id, state="unknown")
            session.add(row)
        _fill(row, info)
        row.kind = info.kind.value
        row.gateway_id = gateway_id
        return _public(row)

    done: Provisioned = _write(sm, work)
    log.info("device_added device=%s gateway=%s kind=%s", done.device_id, gateway_id, done.kind)
    return done


def move_device(sm: sessionmaker[Session], device_id: str, to_gateway: str) -> Provisioned:
    """Give ``device_id`` to ``to_gateway``; from the next reload only it may speak for it."""
    to_gateway = _gateway(to_gateway)

    def work(session: Session) -> tuple[Provisioned, str | None]:
        row = _existing(session, device_id)
        before = row.gateway_id
        row.gateway_id = to_gateway
        return _public(row), before

    done, before = _write(sm, work)
    log.info("device_moved device=%s from=%s to=%s", device_id, before, to_gateway)
    return done  # type: ignore[no-any-return]


def remove_device(sm: sessionmaker[Session], device_id: str) -> Provisioned:
    """Remove a device: no gateway may speak for it any more (its data stays stored)."""

    def work(session: Session) -> Provisioned:
        row = _existing(session, device_id)
        gone = _public(row)
        session.delete(row)
        return gone

    done: Provisioned = _write(sm, work)
    log.info("device_removed device=%s gateway=%s", device_id, done.gateway_id)
    return done


def list_devices(sm: sessionmaker[Session], gateway_id: str | None = None) -> list[Provisioned]:
    query = select(DeviceRow).order_by(DeviceRow.gateway_id, DeviceRow.device_id)
    if gateway_id is not None:
        query = query.where(DeviceRow.gateway_id == gateway_id)
    with sm() as session:
        return [_public(row) for row in session.scalars(query)]


def import_devices(
    sm: sessionmaker[Session], gateway_id: str, infos: list[DeviceInfo]
) -> tuple[int, int]:
    """Provision a gateway's device list: add the new ones, update the descriptive fields
    of those it owns. A device owned by another gateway, or registered with another kind,
    is refused (nothing is written): use ``move`` deliberately. Returns (added, updated)."""
    gateway_id = _gateway(gateway_id)

    def work(session: Session) -> tuple[int, int]:
        added = updated = 0
        for info in infos:
            row = session.get(DeviceRow, info.device_id)
            if row is not None and row.gateway_id not in (None, gateway_id):
                raise ProvisioningError(
                    f"devices: {info.device_id!r} is owned by gateway {row.gateway_id!r}; "
                    "move it first (akita cloud device move)"
                )
            if row is not None and row.gateway_id is not None and row.kind != info.kind.value:
                raise ProvisioningError(
                    f"devices: {info.device_id!r} is registered as {row.kind!r}, the file "
                    f"says {info.kind.value!r}; remove and add it to change its kind"
                )
            if row is None:
                row = DeviceRow(device_id=info.device_id, state="unknown")
                session.add(row)
                added += 1
            else:
                updated += 1
            row.kind = info.kind.value
            row.gateway_id = gateway_id
            _fill(row, info)
        return added, updated

    added, updated = _write(sm, work)
    log.info("devices_imported gateway=%s added=%d updated=%d", gateway_id, added, updated)
    return added, updated


def read_device_list(path: Path) -> tuple[str, list[DeviceInfo]]:
    """``(gateway_id, devices)`` from an edge TOML config or a meta JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisioningError(f"{path}: cannot be read: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            meta = GatewayMeta.model_validate_json(text)
        except ValidationError as exc:
            raise ProvisioningError(f"{path}: {describe(exc)}") from exc
        return meta.gateway_id, list(meta.devices)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProvisioningError(f"{path}: not valid TOML: {exc}") from exc
    gateway = data.get("gateway", {}).get("id") if isinstance(data.get("gateway"), dict) else None
    if not isinstance(gateway, str):
        raise ProvisioningError(f"{path}: gateway.id: missing (got {gateway!r})")
    infos = []
    for i, table in enumerate(data.get("devices", [])):
        fields = {k: table[k] for k in _INFO_KEYS if k in table}
        if isinstance(table.get("extra_fields"), list):  # [[devices.extra_fields]]
            fields["extra_fields"] = [  # the keys the wire's ExtraField knows
                {k: v for k, v in x.items() if k in ExtraField.model_fields}
                if isinstance(x, dict)
                else x
                for x in table["extra_fields"]
            ]
        try:
            infos.append(DeviceInfo.model_validate({"device_id": table.get("id"), **fields}))
        except ValidationError as exc:
            raise ProvisioningError(f"{path}: devices[{i}]: {describe(exc)}") from exc
    return gateway, infos + _camera_infos(path, data)


def _camera_infos(path: Path, data: dict[str, Any]) -> list[DeviceInfo]:
    """``[[cameras.cameras]]``: each camera is a ``flood_camera`` device of the gateway."""
    section = data.get("cameras")
    cams = section.get("cameras", []) if isinstance(section, dict) else []
    infos = []
    for i, cam in enumerate(cams if isinstance(cams, list) else []):
        table = cam if isinstance(cam, dict) else {}
        fields = {"site": table.get("site"), "poll_interval_s": table.get("interval_s")}
        known = {k: v for k, v in fields.items() if v is not None}
        try:
            infos.append(
                DeviceInfo.model_validate(
                    {"device_id": table.get("id"), "kind": "flood_camera", **known}
                )
            )
        except ValidationError as exc:
            raise ProvisioningError(f"{path}: cameras.cameras[{i}]: {describe(exc)}") from exc
    return infos


def parse_info(device_id: str, kind: str, **fields: Any) -> DeviceInfo:
    """A :class:`DeviceInfo` from command-line values; a bad one names the field."""
    try:
        return DeviceInfo.model_validate(
            {"device_id": device_id, "kind": kind, **{k: v for k, v in fields.items() if v}}
        )
    except ValidationError as exc:
        raise ProvisioningError(describe(exc)) from exc


def _existing(session: Session, device_id: str) -> DeviceRow:
    row = session.get(DeviceRow, device_id)
    if row is None:
        raise DeviceNotFound(f"device {device_id!r} is not registered")
    return row


def _fill(row: DeviceRow, info: DeviceInfo) -> None:
    row.site = info.site
    row.district = info.district
    row.area = info.area
    row.lat = info.lat
    row.lon = info.lon
    row.poll_interval_s = info.poll_interval_s
    row.vehicle_type = info.vehicle_type.value if info.vehicle_type else None
    row.extra_fields = extra_fields_json(info)


def extra_fields_json(info: DeviceInfo) -> list[dict[str, Any]] | None:
    """The device's declared extra fields as the ``devices.extra_fields`` column keeps them."""
    if info.extra_fields is None:
        return None
    return [x.model_dump(exclude_none=True) for x in info.extra_fields]


def _public(row: DeviceRow) -> Provisioned:
    return Provisioned(row.device_id, row.kind, row.gateway_id, row.site, row.district, row.area)


def dump(devices: list[Provisioned]) -> str:
    return json.dumps([d.__dict__ for d in devices], ensure_ascii=False, indent=1)
