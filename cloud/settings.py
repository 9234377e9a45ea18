"""Cloud settings: one TOML file plus ``AKITA_*`` environment overrides.

Sections (every one optional; defaults run a development instance on one machine)::

    environment = "development"      # or "production": placeholder and short secrets
                                     # refused (cloud.production); a file without it
                                     # outside the checkout runs as production

    [ingest]                         # cloud.ingest.settings.IngestSettings: broker_host,
                                     # broker_port, username, password, tls, group, ...
    [store]     url = "sqlite:///./.akita/telemetry.db"   # or "influx://user:pw@host:8086/akita"
    [database]  url = "sqlite:///./.akita/akita.db"       # production: PostgreSQL,
                                     # "postgresql+psycopg://akita:...@db/akita"
    [api]       host = "127.0.0.1"   port = 8000
                public_url = "https://bousai.city.akita.example"   # required in production
    [citizen]                        # cloud.citizen.config.CitizenSettings: rate limits, ...
    [detect]                         # cloud.detect.config.DetectConfig
    [alerts]                         # cloud.alerts.config.AlertConfig
    [notify]                         # cloud.notify.config.NotifyConfig
    [smtp]                           # e-mail channel; absent = no e-mail
    [sms]                            # SMS gateway (provider = "webhook" | "twilio")
    [webhook]                        # generic webhook channel (HMAC secret)

Environment overrides use ``AKITA_<SECTION>__<KEY>`` (double underscore between
levels), e.g. ``AKITA_API__PORT=9000``, ``AKITA_DATABASE__URL=postgresql+psycopg://...``,
``AKITA_ENVIRONMENT=production``. Values are parsed as JSON when they look like JSON
(numbers, true/false, lists, objects), else taken as strings.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from cloud.alerts.config import AlertConfig
from cloud.citizen.config import CitizenSettings
from cloud.commands.config import CommandSettings
from cloud.console.config import ConsoleSettings
from cloud.detect.config import DetectConfig
from cloud.errors import SettingsError
from cloud.images.settings import ImageSettings
from cloud.ingest.settings import IngestSettings
from cloud.notify.config import NotifyConfig
from cloud.opendata.settings import OpendataSettings
from cloud.production import default_environment, is_secret_name, secret_problem, url_password

ENV_PREFIX = "AKITA_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Section):
    url: str = Field(
        default="sqlite:///./.akita/telemetry.db",
        description="Time-series store: sqlite:///PATH or an InfluxDB URL",
    )


class DatabaseSettings(_Section):
    url: str = Field(
        default="sqlite:///./.akita/akita.db",
        description="Relational store (SQLAlchemy URL). Production: postgresql+psycopg://...",
    )


class ApiSettings(_Section):
    host: str = Field(default="127.0.0.1", description="Listen address; 0.0.0.0 for all")
    port: int = Field(default=8000, ge=0, le=65535)
    metrics_public: bool = Field(
        default=False, description="Serve /metrics without a token (a private scrape network)"
    )
    tick_s: float = Field(default=1.0, gt=0, le=60, description="Detector/alert tick period")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxy addresses whose X-Forwarded-Proto is believed (HSTS behind TLS)",
    )
    public_url: str | None = Field(
        default=None,
        description="Public base URL (https://host[/prefix]) of every link sent to residents; "
        "required in production, never taken from a request's Host header",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL such as 'https://bousai.example.jp'")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"{value!r} must not carry a query, fragment or credentials")
        return value.strip().rstrip("/")


class SmtpConfig(_Section):
    host: str
    port: int = Field(default=25, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "akita-alerts@localhost"


class SmsConfig(_Section):
    provider: Literal["webhook", "twilio"]
    url: str = Field(default="", description="Gateway URL (webhook) or API base (twilio)")
    sender: str = ""
    username: str | None = None
    password: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)


class WebhookConfig(_Section):
    secret: str | None = Field(default=None, description="HMAC secret signing each POST")
    timeout_s: float = Field(default=10.0, gt=0)


class CloudSettings(_Section):
    environment: Literal["development", "test", "production"] = "development"
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    detect: DetectConfig = Field(default_factory=DetectConfig)
    alerts: AlertConfig = Field(default_factory=AlertConfig)
    opendata: OpendataSettings = Field(default_factory=OpendataSettings)
    notify: NotifyConfig | None = Field(
        default=None, description="Notification routing; absent = no notifier"
    )
    smtp: SmtpConfig | None = None
    sms: SmsConfig | None = None
    webhook: WebhookConfig | None = None
    citizen: CitizenSettings = Field(default_factory=CitizenSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    commands: CommandSettings = Field(default_factory=CommandSettings)
    images: ImageSettings | None = Field(
        default=None, description="Camera image store (docs/cameras.md); absent = no images"
    )
    clock_file: Path | None = Field(
        default=None,
        description="Simulator clock file (firmware_sim); the cloud's 'now' follows it",
    )

    @model_validator(mode="before")
    @classmethod
    def _public_url_alias(cls, data: Any) -> Any:
        # earlier docs named a top-level public_url: accept it as api.public_url
        if not isinstance(data, Mapping) or "public_url" not in data:
            return data
        out = dict(data)
        url = out.pop("public_url")
        api = dict(out.get("api") or {})
        if api.get("public_url") not in (None, url):
            raise ValueError("public_url and api.public_url differ; set only api.public_url")
        out["api"] = api | {"public_url": url}
        return out

    @model_validator(mode="after")
    def _one_public_url(self) -> CloudSettings:
        # one base builds every link: notify.public_base_url follows api.public_url
        notify = self.notify
        if notify is None:
            return self
        explicit = "public_base_url" in notify.model_fields_set
        own = notify.public_base_url.rstrip("/")
        if self.api.public_url is None and explicit:
            self.api.public_url = ApiSettings._public_url(own)
        elif self.api.public_url is not None and explicit and own != self.api.public_url:
            raise ValueError(
                f"notify.public_base_url ({own}) differs from api.public_url "
                f"({self.api.public_url}); set only api.public_url"
            )
        if self.api.public_url is not None:
            notify.public_base_url = self.api.public_url
            if "ack_url" not in notify.model_fields_set:
                # staff mails link to the console's alert page on the same site
                notify.ack_url = f"{self.api.public_url}/console/alerts/{{alert_id}}"
        return self

    def check_public_url(self) -> None:
        """In production every link needs the configured public URL (never a Host header)."""
        if self.environment == "production" and not self.api.public_url:
            raise SettingsError(
                "setting api.public_url is required in production: the public base URL "
                "(e.g. https://bousai.city.akita.example) that builds every link sent to "
                "residents (confirmation e-mails, report status, unsubscribe)"
            )

    @classmethod
    def load(
        cls, path: Path | str | None = None, *, env: Mapping[str, str] | None = None
    ) -> CloudSettings:
        """Read ``path`` (TOML; optional), apply ``AKITA_*`` overrides, validate.

        Raises :class:`SettingsError` naming the setting on any problem.
        """
        data: dict[str, Any] = {}
        source = "defaults"
        if path is not None:
            p = Path(path)
            source = str(p)
            try:
                data = tomllib.loads(p.read_text(encoding="utf-8"))
            except FileNotFoundError as exc:
                raise SettingsError(f"settings file {p} does not exist") from exc
            except (OSError, UnicodeDecodeError) as exc:
                raise SettingsError(f"settings file {p} cannot be read: {exc}") from exc
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"settings file {p} is not valid TOML: {exc}") from exc
        env_used = apply_env(data, os.environ if env is None else env)
        if env_used:
            source += " + " + ", ".join(sorted(env_used))
        if path is None or "environment" in data:
            return cls.from_mapping(data, source=source)
        # a file without environment outside the checkout is a real deployment
        data["environment"] = default_environment(Path(path))
        try:
            return cls.from_mapping(data, source=source)
        except SettingsError as exc:
            raise SettingsError(
                f"{exc} [{source} sets no environment; a settings file outside the source "
                f"checkout runs as production, inside it as development: "
                f"this one runs as {data['environment']}]"
            ) from exc

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "settings") -> CloudSettings:
        try:
            settings = cls.model_validate(data)
        except ValidationError as exc:
            raise SettingsError(f"{source}: {_describe(exc)}") from exc
        settings.check_secrets()
        settings.check_public_url()
        return settings

    @classmethod
    def for_demo(
        cls,
        *,
        mqtt_host: str,
        mqtt_port: int,
        store_url: str,
        database_url: str,
        api_host: str = "127.0.0.1",
        api_port: int = 8000,
        clock_file: Path | None = None,
        embedded_broker: bool = False,
    ) -> CloudSettings:
        """Settings for ``akita demo``: everything on this machine.

        The embedded amqtt broker speaks MQTT 3.1.1 without shared subscriptions, so the
        demo's single ingest worker then subscribes plainly.
        """
        ingest: dict[str, Any] = {"broker_host": mqtt_host, "broker_port": mqtt_port}
        if embedded_broker:
            ingest.update(mqtt_version="3.1.1", group=None)
        return cls.from_mapping(
            {
                "environment": "development",
                "ingest": ingest,
                "store": {"url": store_url},
                "database": {"url": database_url},
                "api": {"host": api_host, "port": api_port},
                "clock_file": clock_file,
            },
            source="demo settings",
        )

    def check_secrets(self) -> None:
        """Outside development, refuse placeholder secrets; in production also short ones
        (rules in :mod:`cloud.production`)."""
        if self.environment == "development":
            return
        production = self.environment == "production"
        for name, value in _walk(self.model_dump()):
            if not isinstance(value, str):
                continue
            secret = value if is_secret_name(name) else url_password(name, value)
            if secret is None:
                continue
            problem = secret_problem(name, secret, production=production)
            if problem is not None:
                raise SettingsError(f"{problem} (environment = {self.environment!r})")


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    """Merge ``AKITA_SECTION__KEY=value`` variables into ``data``; return their names."""
    used = []
    top_level = {f for f, info in CloudSettings.model_fields.items() if _is_scalar(info)}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        # other tools' variables (AKITA_CONFIG, AKITA_INGEST_BROKER_PORT of a standalone
        # worker, ...) have no "__" and are not ours: only AKITA_ENVIRONMENT is
        if not path or (len(path) == 1 and path[0] not in top_level):
            continue
        target = data
        for part in path[:-1]:
            nxt = target.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise SettingsError(f"{name}: setting {'.'.join(path)} is not a section")
            target = nxt
        target[path[-1]] = _env_value(raw)
        used.append(name)
    return used


def _is_scalar(info: Any) -> bool:
    return not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel))


def _env_value(raw: str) -> Any:
    text = raw.strip()
    if text[:1] in "[{" or text in ("true", "false", "null") or _is_number(text):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return raw
    return raw


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _walk(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, SecretStr):
        return [(prefix, value.get_secret_value())]
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out.extend(_walk(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            out.extend(_walk(v, f"{prefix}[{i}]"))
        return out
    return [(prefix, value)]


def _describe(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (value {value!r:.80})"
        parts.append(f"setting {loc}: {err['msg']}{shown}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
