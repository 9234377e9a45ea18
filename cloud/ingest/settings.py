"""Ingest worker settings (pydantic): broker, shared group, batching, buffer, retries."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from cloud.errors import SettingsError
from schemas.codec import describe


def _default_client_id(username: object) -> str:
    # stable across restarts of the same worker, so the broker hands its unacknowledged
    # messages back to it (persistent session). The shipped Mosquitto ties the client id
    # to the username (use_username_as_clientid), so with a username it is the username.
    if isinstance(username, str) and username:
        return username[:64]
    return f"akita-ingest-{socket.gethostname()}"[:64]


class IngestSettings(BaseModel):
    """Everything one ingest worker needs. ``from_env()`` reads ``AKITA_INGEST_<FIELD>``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    broker_host: str = "127.0.0.1"
    broker_port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = Field(default=False, description="Connect with TLS (port 8883 in deploy/)")
    ca_file: Path | None = Field(default=None, description="CA bundle for the broker cert")
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = Field(default=False, description="Skip hostname check (tests only)")
    keepalive_s: int = Field(default=30, ge=5, le=3600)

    mqtt_version: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT 5 in production; 3.1.1 for brokers without it (the demo's amqtt)",
    )
    group: str | None = Field(
        default="akita-ingest",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Shared-subscription group; none = a plain subscription (one worker)",
    )
    client_id: str = Field(
        default="",
        max_length=64,
        description="MQTT client id; default: the username (deploy/mosquitto requires it), "
        "else akita-ingest-<hostname>",
    )
    worker_name: str | None = Field(default=None, description="Tag of self-metrics points")
    session_expiry_s: int = Field(
        default=86_400, ge=0, description="How long the broker keeps queued messages for us"
    )
    receive_maximum: int = Field(
        default=2000, ge=1, le=65535, description="Unacknowledged messages the broker may send"
    )

    batch_size: int = Field(
        default=10_000,
        ge=1,
        description="Readings per store write (InfluxDB's cost per point is lowest at 5-10k)",
    )
    batch_time_s: float = Field(
        default=0.1, gt=0, description="Longest wait before a write (alert latency budget)"
    )
    writers: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Store writes in flight at once (InfluxDB); acks stay in arrival order",
    )
    buffer_readings: int = Field(
        default=50_000, ge=1, description="Readings held in memory before backpressure"
    )
    retry_initial_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=10.0, gt=0)

    max_future_s: float = Field(default=300.0, ge=0, description="Refuse readings this far ahead")
    max_age_s: float = Field(
        default=89 * 86_400.0, gt=0, description="Refuse readings older (raw retention is 90 d)"
    )
    self_metrics_interval_s: float = Field(default=10.0, gt=0)
    first_seen: bool = Field(
        default=False,
        description="Lab only: a device no gateway owns is adopted by the first gateway that "
        "sends it. Off: only provisioned devices are accepted (akita cloud device add). "
        "Refused in production",
    )
    handoff: bool = Field(
        default=False,
        description="Hand every stored batch to the detector tier (akita cloud detect) "
        "through the broker instead of detecting in this process; `akita cloud ingest` "
        "always does",
    )
    detect_partitions: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="Detector partitions (the same number everywhere: 1 for a city, 64 for "
        "a prefecture); a device's partition is crc32(device id) mod this",
    )
    seq_grace_s: float = Field(
        default=30.0,
        gt=0,
        description="Shared group: a seq not stored this long after a later one counts as a "
        "gap (a later arrival fills it again); keep it well above the ~2 s between a "
        "worker's registry flushes",
    )
    seq_sweep_s: float = Field(
        default=5.0,
        gt=0,
        description="Shared group: how often a worker settles the seq ledger (at most every "
        "registry flush, about 2 s)",
    )

    @model_validator(mode="before")
    @classmethod
    def _client_id_follows_username(cls, data: Any) -> Any:
        # "before": an "after" validator that assigns would re-run validate_assignment
        if isinstance(data, dict) and not data.get("client_id"):
            return {**data, "client_id": _default_client_id(data.get("username"))}
        return data

    @property
    def name(self) -> str:
        return self.worker_name or self.client_id

    @classmethod
    def from_env(cls, prefix: str = "AKITA_INGEST_", **overrides: Any) -> IngestSettings:
        """Settings from environment variables (``AKITA_INGEST_BROKER_PORT=8883``), then
        ``overrides``. A bad value raises :class:`SettingsError` naming the variable."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            env = os.environ.get(prefix + name.upper())
            if env is not None:
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(f"ingest settings ({prefix}*): {describe(exc)}") from exc
