"""Device and gateway registry: who owns which device, and what the gateways report.

- Which gateway owns which device, and each device's kind, come from provisioning only
  (:mod:`cloud.provisioning`, :meth:`Registry.provision`). The ingest asks
  :meth:`Registry.owned` (a dict lookup per reading) and refuses a reading, status or
  event of a device the sending gateway does not own. A gateway's retained
  :class:`~schemas.GatewayMeta` fills only the descriptive fields (site, district, area,
  location, poll interval, vehicle type) of devices it owns (:meth:`Registry.apply_meta`).
  In a lab, ``first_seen`` mode adopts unknown devices for the gateway that sends them.
- Other processes change the registry (``akita cloud device move``): every worker polls
  the ``registry_version`` row and reloads when it moved (:meth:`Registry.refresh`).
- Gateway online/offline comes from the retained :class:`~schemas.GatewayStatus` birth
  message and Last Will; the birth's ``boot_id`` names the gateway's seq counter.
- Per gateway, the batch ``seq`` tells a duplicate from a gap from a rollback
  (:meth:`Registry.check_seq`); the accounting itself is :mod:`cloud.seq_accounting`,
  and across a shared-subscription group :mod:`cloud.seq_ledger`.

State lives in memory (the ingest asks for tags on every reading) and is written through
to the relational tables ``devices`` and ``gateways`` (:mod:`cloud.db.models`), so that a
restarted worker tags readings exactly as before (same series, so redelivered readings
stay idempotent) and the API can read it from another process (:meth:`Registry.load`).
Seq counters change on every batch and are flushed in bulk by :meth:`Registry.flush`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud import provisioning, seq_ledger
from cloud.db.models import DeviceRow, GatewayRow
from cloud.errors import CloudError
from cloud.seq_accounting import SeqAccounts, SeqCheck, SeqVerdict, log_settled
from cloud.seq_ledger import SeqSettled
from schemas import DeviceInfo, DeviceStatus, GatewayHealth, GatewayMeta, GatewayStatus

log = logging.getLogger(__name__)

_NONE: dict[str, str] = {}  # the devices of a gateway that owns none (never mutated)


class Refusal(StrEnum):
    """Why a device's data from a gateway is refused (the metric's ``reason`` label)."""

    NOT_OWNER = "not_owner"  # provisioned for another gateway
    UNKNOWN_DEVICE = "unknown_device"  # not provisioned at all
    KIND_MISMATCH = "kind_mismatch"  # provisioned with another kind


@dataclass(frozen=True)
class MetaOutcome:
    """What :meth:`Registry.apply_meta` did: devices changed, and entries refused."""

    changed: int = 0
    refused: tuple[tuple[str, Refusal], ...] = ()


@dataclass
class GatewayInfo:
    """What the cloud knows about one gateway."""

    gateway_id: str
    state: str = "unknown"  # online | offline | unknown
    state_since: datetime | None = None
    last_seq: int = -1
    gaps: int = 0  # batches currently missing by seq
    duplicates: int = 0
    version: str | None = None
    health: dict[str, Any] | None = None
    last_seen: datetime | None = None
    boot_id: str | None = None  # of the seq counter, from the birth message


@dataclass
class DeviceState:
    state: str = "unknown"
    reason: str | None = None
    since: datetime | None = None


class RegistryError(CloudError):
    """The registry could not read or write the relational store."""


class Registry:
    """Devices and gateways, in memory with write-through to SQLAlchemy (optional)."""

    def __init__(
        self, sessionmaker: sessionmaker[Session] | None = None, *, first_seen: bool = False
    ) -> None:
        self._sessionmaker = sessionmaker
        # lab mode: a device nobody owns is adopted by the first gateway that sends it
        self.first_seen = first_seen
        if first_seen:
            log.warning(
                "registry_first_seen_mode enabled=true reason=unknown devices are adopted by "
                "the gateway that sends them first; never use this in production"
            )
        # gateway -> {device: kind}; replaced whole on change, so readers need no lock
        self._owned: dict[str, dict[str, str]] = {}
        self._registry_version: int | None = None  # of the registry_version row
        self._lock = threading.RLock()
        self._devices: dict[str, DeviceInfo] = {}
        self._device_gateway: dict[str, str] = {}
        self._device_state: dict[str, DeviceState] = {}
        self._gateways: dict[str, GatewayInfo] = {}
        self._seqs = SeqAccounts()
        self._tags: dict[str, dict[str, str]] = {}
        self._dirty_gateways: set[str] = set()
        self.version = 0  # bumped whenever device tags may have changed
        if sessionmaker is not None:
            self.load()

    # --- loading ------------------------------------------------------------------------

    def load(self) -> None:
        """(Re)read devices and gateways from the relational store."""
        if self._sessionmaker is None:
            return
        try:
            with self._sessionmaker() as session:
                version = provisioning.read_version(self._sessionmaker)
                devices = session.scalars(select(DeviceRow)).all()
                gateways = session.scalars(select(GatewayRow)).all()
                with self._lock:
                    self._registry_version = version
                    # the table is the authority: a removed or moved device goes here too
                    self._devices.clear()
                    self._device_gateway.clear()
                    for row in devices:
                        info = DeviceInfo(
                            device_id=row.device_id,
                            kind=row.kind,  # type: ignore[arg-type]
                            site=row.site,
                            district=row.district,
                            area=row.area,
                            lat=row.lat,
                            lon=row.lon,
                            poll_interval_s=row.poll_interval_s,
                            vehicle_type=row.vehicle_type,  # type: ignore[arg-type]
                            extra_fields=row.extra_fields,  # type: ignore[arg-type]
                        )
                        self._devices[row.device_id] = info
                        if row.gateway_id:
                            self._device_gateway[row.device_id] = row.gateway_id
                        known = self._device_state.get(row.device_id)
                        if known is None or known.since is None:
                            self._device_state[row.device_id] = DeviceState(
                                row.state, row.state_reason, row.last_seen
                            )
                    for g in gateways:
                        info_g = self._gateways.setdefault(g.gateway_id, GatewayInfo(g.gateway_id))
                        info_g.state = g.state
                        info_g.state_since = g.state_since
                        info_g.last_seq = max(info_g.last_seq, g.last_seq)
                        info_g.gaps = max(info_g.gaps, g.gaps)
                        info_g.duplicates = max(info_g.duplicates, g.duplicates)
                        info_g.version = g.version
                        info_g.health = g.health
                        if info_g.boot_id in (None, g.boot_id):
                            info_g.boot_id = g.boot_id
                            self._seqs.raise_last(g.gateway_id, g.last_seq)
                    self._rebuild_owned()
                    self._tags.clear()
                    self.version += 1
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry load failed: {exc}") from exc

    def refresh(self) -> bool:
        """Reload when another process changed the provisioning (the ``registry_version``
        row moved); True when it reloaded. One small SELECT: call it every few seconds."""
        if self._sessionmaker is None:
            return False
        try:
            version = provisioning.read_version(self._sessionmaker)
        except SQLAlchemyError as exc:
            log.warning("registry_read_failed reason=%s", exc)
            return False
        if version == self._registry_version:
            return False
        self.load()
        log.info("registry_reloaded version=%d devices=%d", version, len(self._devices))
        return True

    def _rebuild_owned(self) -> None:
        """Under the lock: the per-gateway ownership maps, replaced whole (readers of the
        old maps go on unlocked; a new reader sees the new ones)."""
        owned: dict[str, dict[str, str]] = {}
        for device_id, gateway_id in self._device_gateway.items():
            info = self._devices.get(device_id)
            if info is not None:
                owned.setdefault(gateway_id, {})[device_id] = info.kind.value
        self._owned = owned

    # --- ownership ----------------------------------------------------------------------

    def owned(self, gateway_id: str) -> dict[str, str]:
        """``{device_id: kind}`` of the devices ``gateway_id`` owns. Do not mutate it."""
        return self._owned.get(gateway_id, _NONE)

    def judge(self, gateway_id: str, device_id: str, kind: str) -> Refusal | None:
        """Why ``gateway_id`` may not send ``kind`` data for ``device_id`` (None: it may)."""
        mine = self._owned.get(gateway_id, _NONE).get(device_id)
        if mine is not None:
            return None if mine == kind else Refusal.KIND_MISMATCH
        with self._lock:
            known = device_id in self._devices and device_id in self._device_gateway
        return Refusal.NOT_OWNER if known else Refusal.UNKNOWN_DEVICE

    def owner_of(self, device_id: str) -> str | None:
        return self.gateway_of(device_id)

    def provision(self, gateway_id: str, infos: list[DeviceInfo]) -> int:
        """Authoritative: ``gateway_id`` owns ``infos`` (added, moved, kind set). For
        provisioning tools, tests and the demo; never called with what a gateway sent
        (except by :meth:`adopt` in first-seen mode). Returns how many changed."""
        changed: list[DeviceInfo] = []
        with self._lock:
            for info in infos:
                if (
                    self._devices.get(info.device_id) != info
                    or self._device_gateway.get(info.device_id) != gateway_id
                ):
                    changed.append(info)
                    self._devices[info.device_id] = info
                    self._device_gateway[info.device_id] = gateway_id
                    self._tags.pop(info.device_id, None)
            if changed:
                self._rebuild_owned()
                self.version += 1
            self._gateways.setdefault(gateway_id, GatewayInfo(gateway_id))
        if changed:
            log.info("registry_provisioned gateway=%s devices=%d", gateway_id, len(changed))
            self._persist_devices(gateway_id, changed, owner=True)
        return len(changed)

    def adopt(self, gateway_id: str, info: DeviceInfo) -> bool:
        """First-seen mode: give an unknown device to the gateway that sent it. True when
        adopted (False: not in first-seen mode, or the device is known)."""
        with self._lock:
            if not self.first_seen or info.device_id in self._device_gateway:
                return False
        log.warning(
            "registry_first_seen_adopted gateway=%s device=%s kind=%s",
            gateway_id,
            info.device_id,
            info.kind.value,
        )
        self.provision(gateway_id, [info])
        return True

    # --- queries ------------------------------------------------------------------------

    def devices(self) -> dict[str, DeviceInfo]:
        with self._lock:
            return dict(self._devices)

    def device(self, device_id: str) -> DeviceInfo | None:
        with self._lock:
            return self._devices.get(device_id)

    def gateway_of(self, device_id: str) -> str | None:
        with self._lock:
            return self._device_gateway.get(device_id)

    def device_state(self, device_id: str) -> DeviceState:
        with self._lock:
            return replace(self._device_state.get(device_id, DeviceState()))

    def gateways(self) -> dict[str, GatewayInfo]:
        with self._lock:
            return {k: replace(v) for k, v in self._gateways.items()}

    def gateway(self, gateway_id: str) -> GatewayInfo | None:
        with self._lock:
            g = self._gateways.get(gateway_id)
            return replace(g) if g else None

    def tags_for(self, device_id: str) -> dict[str, str]:
        """InfluxDB tags of a device: device, gateway, site, district, kind (known ones)."""
        tags = self._tags.get(device_id)
        if tags is not None:
            return dict(tags)
        with self._lock:
            tags = {"device": device_id}
            info = self._devices.get(device_id)
            gateway = self._device_gateway.get(device_id)
            if gateway:
                tags["gateway"] = gateway
            if info is not None:
                tags["kind"] = info.kind.value
                if info.site:
                    tags["site"] = info.site
                if info.district:
                    tags["district"] = info.district
            self._tags[device_id] = tags
            return dict(tags)

    # --- updates from MQTT --------------------------------------------------------------

    def apply_meta(self, meta: GatewayMeta) -> MetaOutcome:
        """A gateway's retained device list: it fills the descriptive fields of devices the
        gateway owns, never creates, re-homes or re-kinds one (first-seen mode: adopts
        unknown ones). Returns what changed and what was refused, and why."""
        gateway_id = meta.gateway_id
        refused: list[tuple[str, Refusal]] = []
        adopt: list[DeviceInfo] = []
        changed: list[DeviceInfo] = []
        with self._lock:
            for info in meta.devices:
                reason = self.judge(gateway_id, info.device_id, info.kind.value)
                if reason is Refusal.UNKNOWN_DEVICE and self.first_seen:
                    adopt.append(info)
                elif reason is not None:
                    refused.append((info.device_id, reason))
                elif self._devices.get(info.device_id) != info:
                    changed.append(info)
                    self._devices[info.device_id] = info  # same kind, same owner
                    self._tags.pop(info.device_id, None)
            if changed:
                self._rebuild_owned()
                self.version += 1
            self._gateways.setdefault(gateway_id, GatewayInfo(gateway_id))
        for info in adopt:
            self.adopt(gateway_id, info)
        if changed:
            log.info("registry_meta gateway=%s devices_changed=%d", gateway_id, len(changed))
            self._persist_devices(gateway_id, changed, owner=False)
        return MetaOutcome(len(changed) + len(adopt), tuple(refused))

    def apply_status(self, status: GatewayStatus, *, now: datetime | None = None) -> bool:
        """Birth (online) or Last Will (offline); returns True when the state changed."""
        at = status.ts or now or datetime.now(UTC)
        with self._lock:
            g = self._gateways.setdefault(status.gateway_id, GatewayInfo(status.gateway_id))
            changed = g.state != status.state.value
            g.state = status.state.value
            if changed or g.state_since is None:
                g.state_since = at
            if status.version:
                g.version = status.version
            new_boot = status.boot_id is not None and status.boot_id != g.boot_id
            if new_boot:
                # the gateway's seq counter restarted (a new spool): the next batch may
                # go back, once
                last = self._seqs.new_boot(status.gateway_id, known_boot=g.boot_id is not None)
                log.warning(
                    "gateway_new_boot gateway=%s boot_id=%s previous=%s last_seq=%d",
                    status.gateway_id,
                    status.boot_id,
                    g.boot_id,
                    last,
                )
                g.boot_id = status.boot_id
            self._dirty_gateways.add(status.gateway_id)
        if changed:
            log.info("gateway_state gateway=%s state=%s", status.gateway_id, status.state.value)
        self.flush()
        return changed

    def apply_health(self, health: GatewayHealth) -> None:
        with self._lock:
            g = self._gateways.setdefault(health.gateway_id, GatewayInfo(health.gateway_id))
            g.health = health.model_dump(mode="json")
            g.last_seen = health.ts
            self._dirty_gateways.add(health.gateway_id)

    def apply_device_status(self, gateway_id: str, status: DeviceStatus) -> bool:
        """A device went online/offline (from a batch); True when the state changed.
        Only its owner speaks for a device: the ingest refuses the others' statuses
        before they get here, and this refuses them again (False)."""
        if status.device_id not in self._owned.get(gateway_id, _NONE):
            return False
        with self._lock:
            current = self._device_state.setdefault(status.device_id, DeviceState())
            if current.since is not None and status.ts < current.since:
                return False  # older news
            changed = current.state != status.state.value
            current.state, current.reason, current.since = (
                status.state.value,
                status.reason,
                status.ts,
            )
        if changed and self._sessionmaker is not None:
            try:
                with self._sessionmaker.begin() as session:
                    row = session.get(DeviceRow, status.device_id)
                    if row is not None:
                        row.state = status.state.value
                        row.state_reason = status.reason
                        row.last_seen = status.ts
            except SQLAlchemyError as exc:
                log.warning("registry_write_failed device=%s reason=%s", status.device_id, exc)
        return changed

    def check_seq(self, gateway_id: str, seq: int, fingerprint: tuple[object, ...]) -> SeqCheck:
        """Classify a batch by its seq and remember it (a CONFLICT is not remembered).

        ``fingerprint`` summarises the batch content so that a re-send (same seq, same
        content) is told from a conflicting reuse of a seq. The ingest calls this as it
        decodes, in arrival order; if it dies before the batch is stored, the broker
        redelivers it and a restarted worker sees a duplicate, which it stores again
        (idempotent), so nothing is lost. The rules: :meth:`SeqAccounts.check`.
        """
        with self._lock:
            g = self._gateways.setdefault(gateway_id, GatewayInfo(gateway_id))
            check = self._seqs.check(g, seq, fingerprint)
            if check.verdict not in (SeqVerdict.CONFLICT, SeqVerdict.ROLLBACK):
                g.last_seen = datetime.now(UTC)
                self._dirty_gateways.add(gateway_id)
            return check

    # --- write-through ------------------------------------------------------------------

    def _persist_devices(self, gateway_id: str, infos: list[DeviceInfo], *, owner: bool) -> None:
        """Write devices through; ``owner``: also their owner and kind (provisioning; bumps
        the registry version so the other workers reload), else descriptive fields only
        (meta, on rows whose owner is still ``gateway_id``)."""
        if self._sessionmaker is None:
            return
        try:
            with self._sessionmaker.begin() as session:
                for info in infos:
                    row = session.get(DeviceRow, info.device_id)
                    if not owner and (row is None or row.gateway_id != gateway_id):
                        continue  # moved meanwhile by another process: not ours to fill
                    if row is None:
                        row = DeviceRow(device_id=info.device_id, state="unknown")
                        session.add(row)
                    if owner:
                        row.kind = info.kind.value
                        row.gateway_id = gateway_id
                    row.site = info.site
                    row.district = info.district
                    row.area = info.area
                    row.lat = info.lat
                    row.lon = info.lon
                    row.poll_interval_s = info.poll_interval_s
                    row.vehicle_type = info.vehicle_type.value if info.vehicle_type else None
                    row.extra_fields = provisioning.extra_fields_json(info)
                if owner:
                    provisioning.bump_version(session)
        except SQLAlchemyError as exc:
            # the in-memory registry still serves; the next meta message retries
            log.warning("registry_write_failed gateway=%s reason=%s", gateway_id, exc)

    def flush(self) -> None:
        """Write changed gateway rows (state, seq counters, health) through to the DB, and
        (shared) the seqs stored since the last flush to the ledger."""
        if self._sessionmaker is None:
            self._dirty_gateways.clear()
            return
        with self._lock:
            dirty = {g: replace(self._gateways[g]) for g in self._dirty_gateways}
            self._dirty_gateways.clear()
            seqs, duplicates, dropped = self._seqs.take()
        if dropped:
            log.warning(
                "seq_ledger_overflow dropped=%d reason=database unreachable; those seqs "
                "will be reported as gaps",
                dropped,
            )
        if dirty:
            self._flush_gateways(dirty, duplicates)
        if seqs:
            try:  # a transaction of its own: a failed gateway row must not hold the seqs
                with self._sessionmaker.begin() as session:
                    seq_ledger.record(session, seqs, datetime.now(UTC))
            except SQLAlchemyError as exc:
                with self._lock:
                    self._seqs.give_back(seqs)
                log.warning("registry_flush_failed seqs=%d reason=%s", len(seqs), exc)

    def _flush_gateways(self, dirty: dict[str, GatewayInfo], duplicates: dict[str, int]) -> None:
        try:
            try:
                self._write_gateways(dirty, duplicates)
            except IntegrityError:  # another worker created one of these rows meanwhile
                self._write_gateways(dirty, duplicates)
        except SQLAlchemyError as exc:
            with self._lock:
                self._dirty_gateways.update(dirty)
                self._seqs.give_back(duplicates=duplicates)
            log.warning("registry_flush_failed gateways=%d reason=%s", len(dirty), exc)

    def _write_gateways(self, dirty: dict[str, GatewayInfo], duplicates: dict[str, int]) -> None:
        assert self._sessionmaker is not None
        with self._sessionmaker.begin() as session:
            # one SELECT for all (a get() each cost ~0.3 ms: 100 gateways every 2 s)
            ids = list(dirty)
            rows = {
                row.gateway_id: row
                for i in range(0, len(ids), 500)  # SQLite's bound-parameter limit
                for row in session.scalars(
                    select(GatewayRow).where(GatewayRow.gateway_id.in_(ids[i : i + 500]))
                )
            }
            for gateway_id, g in dirty.items():
                row = rows.get(gateway_id)
                created = row is None
                if row is None:
                    row = GatewayRow(gateway_id=gateway_id, gaps=0, duplicates=0)
                    session.add(row)
                    row.last_seq = -1
                row.state = g.state
                row.state_since = g.state_since
                if g.boot_id is not None and row.boot_id != g.boot_id:
                    # a new seq counter: its last seq replaces the old counter's (the
                    # shared ledger tells the restart by itself, see cloud.seq_ledger)
                    row.boot_id = g.boot_id
                    row.last_seq = g.last_seq
                else:
                    # several workers may share a gateway's stream: never move seq back
                    row.last_seq = max(row.last_seq if row.last_seq is not None else -1, g.last_seq)
                if not self._seqs.shared:
                    row.gaps = g.gaps
                    row.duplicates = g.duplicates
                elif created:
                    row.duplicates = duplicates.get(gateway_id, 0)
                elif duplicates.get(gateway_id):
                    # shared: the sweeps add to these columns too; add, never overwrite
                    row.duplicates = (
                        func.coalesce(GatewayRow.duplicates, 0) + duplicates[gateway_id]
                    )
                row.version = g.version
                row.health = g.health

    # --- shared subscription: the seq ledger --------------------------------------------

    def share_seqs(self) -> bool:
        """This worker shares the gateways' streams with others (a shared-subscription
        group): from now on :meth:`check_seq` judges no gaps; :meth:`record_seq` and
        :meth:`sweep_seqs` count them exactly through the relational store. Returns False,
        and changes nothing, when there is no store: gaps are then judged in memory, which
        is exact only while this worker is alone in its group."""
        if self._sessionmaker is None:
            return False
        with self._lock:
            self._seqs.shared = True
        return True

    def record_seq(self, gateway_id: str, seq: int) -> None:
        """Shared: a batch is durably stored; its seq goes to the ledger on :meth:`flush`.

        A batch :meth:`check_seq` called a DUPLICATE is counted already: do not record it.
        """
        if not self._seqs.shared or self._sessionmaker is None:
            return
        with self._lock:
            self._seqs.record(gateway_id, seq)

    def sweep_seqs(self, grace_s: float, *, now: datetime | None = None) -> list[SeqSettled]:
        """Shared: settle the ledger's seqs older than ``grace_s`` (see
        :mod:`cloud.seq_ledger`); log the gaps found; refresh the gateways' gap and
        duplicate counts from the database. Returns what this sweep settled (another
        worker's sweep may have settled the rest)."""
        if not self._seqs.shared or self._sessionmaker is None:
            return []
        settled = seq_ledger.sweep(self._sessionmaker, grace_s=grace_s, now=now)
        log_settled(settled)
        self._refresh_seq_counters()
        return settled

    def _refresh_seq_counters(self) -> None:
        """Gaps and duplicates as all workers' sweeps left them (for ``/gateways``)."""
        assert self._sessionmaker is not None
        try:
            with self._sessionmaker() as session:
                rows = session.execute(
                    select(
                        GatewayRow.gateway_id,
                        GatewayRow.gaps,
                        GatewayRow.duplicates,
                        GatewayRow.last_seq,
                        GatewayRow.boot_id,
                    )
                ).all()
        except SQLAlchemyError as exc:
            log.warning("registry_read_failed reason=%s", exc)
            return
        with self._lock:
            for gateway_id, gaps, duplicates, last_seq, boot_id in rows:
                g = self._gateways.setdefault(gateway_id, GatewayInfo(gateway_id))
                g.gaps = gaps or 0
                g.duplicates = (duplicates or 0) + self._seqs.duplicates_delta.get(gateway_id, 0)
                # the peers' highest seq: a rollback is judged against the whole group's
                if last_seq is not None and boot_id == g.boot_id:
                    self._seqs.raise_last(gateway_id, last_seq)
