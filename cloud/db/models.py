"""Core tables. Features add their own modules (e.g. notification deliveries)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloud.db.base import Base


class DeviceRow(Base):
    """Device registry. ``gateway_id`` (the owner) and ``kind`` are set only by
    provisioning (:mod:`cloud.provisioning`); a gateway's retained meta fills the
    descriptive fields of the devices it owns."""

    __tablename__ = "devices"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    gateway_id: Mapped[str | None] = mapped_column(String(64), index=True)
    site: Mapped[str | None] = mapped_column(String(80))
    district: Mapped[str | None] = mapped_column(String(80), index=True)
    area: Mapped[str | None] = mapped_column(String(80), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    poll_interval_s: Mapped[float | None] = mapped_column(Float)
    vehicle_type: Mapped[str | None] = mapped_column(String(16))
    extra_fields: Mapped[list | None] = mapped_column(
        JSON, doc="Declared diagnostic fields (schemas.wire.ExtraField as dicts)"
    )
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    state_reason: Mapped[str | None] = mapped_column(String(500))
    last_seen: Mapped[datetime | None]


class GatewayRow(Base):
    __tablename__ = "gateways"
    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    state_since: Mapped[datetime | None]
    last_seq: Mapped[int] = mapped_column(BigInteger, default=-1)
    gaps: Mapped[int] = mapped_column(Integer, default=0, doc="Batches missing by seq")
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[str | None] = mapped_column(String(40))
    health: Mapped[dict | None] = mapped_column(JSON, doc="Last GatewayHealth payload")
    # Added for ingest workers sharing one subscription group (cloud.registry); an
    # existing database gets it from its migration (cloud/db/migrations, revision 0002).
    seq_checked: Mapped[int | None] = mapped_column(
        BigInteger,
        default=None,
        doc="Shared ingest: every seq below this is settled by the gap sweep (watermark)",
    )
    # Added for the seq-reset rule (cloud.registry): a seq may go back only after a
    # birth message with a new boot id.
    boot_id: Mapped[str | None] = mapped_column(
        String(64), default=None, doc="Boot id of the gateway's current seq counter"
    )


class RegistryVersionRow(Base):
    """One row: bumped by every provisioning change, polled by the ingest workers, which
    reload the device registry when it moves (no restart, no query per reading)."""

    __tablename__ = "registry_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class GatewaySeqBlock(Base):
    """Seq ledger of ingest workers that share one subscription group.

    Each worker adds one block per gateway per registry flush (about every 2 s): the
    seqs it stored, packed (:func:`cloud.seq_ledger.pack`), not a row per batch, so the
    database sees about a hundred rows every 2 s instead of thousands a second. The
    sweep (:mod:`cloud.seq_ledger`) turns settled seqs into ``gateways.gaps`` and
    ``gateways.duplicates`` and deletes their blocks (a block only partly settled is
    written back with the rest). A block with ``missing`` set holds seqs the sweep
    counted as gaps, so that a batch arriving after all fills them again.
    """

    __tablename__ = "gateway_seq_blocks"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    gateway_id: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(doc="When written; the grace period runs from it")
    missing: Mapped[bool] = mapped_column(Boolean, default=False, doc="Gap markers, not batches")
    lo: Mapped[int] = mapped_column(BigInteger, doc="Lowest seq in the block")
    hi: Mapped[int] = mapped_column(BigInteger, doc="Highest seq in the block")
    seqs: Mapped[bytes] = mapped_column(LargeBinary, doc="Sorted seqs, int64 little-endian")

    __table_args__ = (Index("ix_gateway_seq_blocks_gateway_lo", "gateway_id", "lo"),)


class AlertRow(Base):
    """One alert. ``dedup_key`` (device + kind) is unique among active alerts."""

    __tablename__ = "alerts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(160), index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    site: Mapped[str | None] = mapped_column(String(80))
    area: Mapped[str | None] = mapped_column(String(80))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text, default="")
    value: Mapped[float | None] = mapped_column(Float)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    # Added by the alert lifecycle (cloud.alerts): stage and detector extras, district
    # (an InfluxDB tag), who acknowledged, and when the condition cleared (the hold-off
    # before auto-resolve runs from there; None while the condition holds).
    district: Mapped[str | None] = mapped_column(String(80), default=None)
    extra: Mapped[dict | None] = mapped_column(JSON, default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(80), default=None)
    cleared_at: Mapped[datetime | None] = mapped_column(default=None)
    events: Mapped[list[AlertEventRow]] = relationship(
        back_populates="alert", order_by="AlertEventRow.id", cascade="all, delete-orphan"
    )

    __table_args__ = (Index("ix_alerts_active", "dedup_key", "state"),)


class AlertEventRow(Base):
    """Every alert transition, with who and when (audit trail)."""

    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80), doc="'system' or the token's name")
    action: Mapped[str] = mapped_column(String(32), doc="open, update, ack, resolve, ...")
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    alert: Mapped[AlertRow] = relationship(back_populates="events")


class MaintenanceWindowRow(Base):
    """A maintenance window that silences alerts of a site or of one device.

    Either ``site`` or ``device_id`` is set (or both: that device, at that site).
    Cancelling keeps the row (``cancelled_at``/``cancelled_by``) for the audit trail.
    """

    __tablename__ = "maintenance_windows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str | None] = mapped_column(String(80), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(80), default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_by: Mapped[str | None] = mapped_column(String(80), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiTokenRow(Base):
    """Staff API bearer tokens; only a SHA-256 hash of the secret is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class SubscriptionRow(Base):
    """A resident's alert subscription. Contact details never go to logs.

    Area is either a town name (``area``) or a point and radius.
    """

    __tablename__ = "subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(8), doc="email or sms")
    address: Mapped[str] = mapped_column(String(254), doc="e-mail address or E.164 phone number")
    area: Mapped[str | None] = mapped_column(String(80), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[float | None] = mapped_column(Float)
    kinds: Mapped[list[str]] = mapped_column(JSON, doc="alert topics: flood, heat")
    lang: Mapped[str] = mapped_column(String(8), default="ja")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, doc="subscriber's token")
    consent_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
