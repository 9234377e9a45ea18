"""``akita cloud``: run the cloud side, prepare its databases, make API tokens."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import typer

from cloud.detect.tier_cli import run as detect_run
from cloud.device_cli import app as device_app
from cloud.errors import CloudError
from cloud.ingest.cli import run as ingest_run
from cloud.logs import setup_logging
from cloud.lpwa.cli import run as lpwa_run
from cloud.user_cli import app as user_app

app = typer.Typer(
    help=(
        "The cloud side: MQTT ingest, storage, detection, alerts and the staff API.\n\n"
        "Settings come from a TOML file (--config, or $AKITA_CONFIG) and AKITA_* "
        "environment variables, e.g. AKITA_API__PORT=9000. Without a file it runs a "
        "development instance: broker on 127.0.0.1:1883, SQLite files under ./.akita/.\n\n"
        "First start:\n\n"
        "  akita cloud init-db --config cloud.toml\n\n"
        "  akita cloud token create --name ops-admin --role admin --config cloud.toml\n\n"
        "  akita cloud device import gateway.toml --config cloud.toml\n\n"
        "  akita cloud run --config cloud.toml"
    ),
    no_args_is_help=True,
)
token_app = typer.Typer(
    help="Staff API bearer tokens (only their SHA-256 hashes are stored).",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")
app.add_typer(device_app, name="device")
app.add_typer(user_app, name="user")
# a standalone ingest worker (no API): scale out by starting several with one --group
app.command(
    "ingest",
    help=(
        "Run one ingest worker (MQTT -> validation -> store) without the API. Start several "
        "with the same --group to split the load.\n\n"
        "Example: akita cloud ingest --broker-port 1883 "
        "--store influx+http://127.0.0.1:8086/akita --group akita-ingest"
    ),
)(ingest_run)

# the detector tier: one instance per process; several for failover and load
app.command("detect")(detect_run)
# meters through a LoRaWAN network server's MQTT integration (docs/lpwa.md)
app.command("lpwa")(lpwa_run)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings TOML file (default: $AKITA_CONFIG, else built-in defaults)",
        envvar="AKITA_CONFIG",
        dir_okay=False,
    ),
]


def _settings(config: Path | None):  # type: ignore[no-untyped-def]
    from cloud.settings import CloudSettings

    try:
        return CloudSettings.load(config)
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def run(
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option(help="API listen address (overrides api.host)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="API port (overrides api.port)")] = None,
    no_ingest: Annotated[
        bool, typer.Option("--no-ingest", help="Serve the API only (no MQTT ingest)")
    ] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run ingest, detectors, alerts and the staff API in one process.

    Ctrl-C (SIGINT) or SIGTERM stops it cleanly.

    Example:

      AKITA_API__PORT=9000 akita cloud run --config /etc/akita/cloud.toml
    """
    import uvicorn

    from cloud.api.app import create_app
    from cloud.service import CloudService

    setup_logging(log_level)
    settings = _settings(config)
    try:
        service = CloudService(settings)
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    service.start(ingest=not no_ingest)
    api = create_app(service)

    @contextlib.asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        # uvicorn re-raises SIGTERM/SIGINT once it has shut down, so the service is
        # stopped here, in the app's shutdown, not after uvicorn.run returns
        yield
        await asyncio.to_thread(service.stop)

    api.router.lifespan_context = lifespan
    try:
        uvicorn.run(
            api,
            host=host or settings.api.host,
            port=port if port is not None else settings.api.port,
            log_config=None,
            log_level=log_level.lower(),
        )
    finally:
        service.stop()  # idempotent; covers a failure before the app started


@app.command("init-db")
def init_db(config: ConfigOption = None) -> None:
    """Create or upgrade the relational tables and prepare the time-series store.

    The relational store is brought to this version's schema by its migrations
    (Alembic): a database made by an older version is upgraded in place, with no
    hand-written ALTER. Run it as a database user allowed to change tables.

    For InfluxDB this creates the database, the retention policies (raw 90 d,
    agg_1m 10 y) and the 1-minute continuous queries; it is safe to run again.

    Example:

      AKITA_STORE__URL=influx+http://127.0.0.1:8086/akita akita cloud init-db
    """
    from cloud.db.base import create_all, make_engine
    from cloud.service import _ensure_sqlite_dir
    from cloud.store import init_db as init_store

    setup_logging("WARNING")
    settings = _settings(config)
    try:
        done = init_store(settings.store.url)
        _ensure_sqlite_dir(settings.database.url)
        engine = make_engine(settings.database.url)
        migrated = create_all(engine)
        engine.dispose()
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for step in done:
        typer.echo(f"store: {step}")
    for step in migrated:
        typer.echo(f"database: {step}")
    typer.echo(f"database: tables ready ({engine.dialect.name})")


@app.command("reaggregate")
def reaggregate(
    start: Annotated[
        str,
        typer.Option("--from", help="First minute, ISO 8601 with offset (2026-11-28T09:00+09:00)"),
    ],
    end: Annotated[str, typer.Option("--to", help="Last minute, ISO 8601 with offset")],
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Measurement(s); default: every kind")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option("--gateway", help="Only this gateway's series; default: all")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Recompute InfluxDB's 1-minute aggregates (agg_1m) for a time range.

    The continuous queries look back only 2 minutes and the ingest recomputes the
    minutes of readings that arrive later. Use this after an ingest worker was killed
    while it held late readings (its log says `aggregates_not_recomputed`), or after
    writing raw data by other means. Safe to repeat: an aggregate is keyed by series
    and minute.

    Example:

      akita cloud reaggregate --from 2026-11-28T09:00+09:00 --to 2026-11-28T12:00+09:00
    """
    from datetime import datetime

    from cloud.ingest.late import Reaggregating
    from cloud.store import open_store
    from schemas import DeviceKind

    setup_logging("WARNING")
    settings = _settings(config)
    times = []
    for name, text in (("--from", start), ("--to", end)):
        try:
            t = datetime.fromisoformat(text)
        except ValueError as exc:
            typer.echo(f"error: {name} {text!r} is not an ISO 8601 time", err=True)
            raise typer.Exit(2) from exc
        if t.tzinfo is None:
            typer.echo(f"error: {name} {text!r} has no UTC offset (add Z or +09:00)", err=True)
            raise typer.Exit(2)
        times.append(int(t.timestamp() * 1000))
    if times[1] < times[0]:
        typer.echo(f"error: --to {end!r} is before --from {start!r}", err=True)
        raise typer.Exit(2)
    kinds = [k.value for k in DeviceKind]
    unknown = [k for k in kind or [] if k not in kinds]
    if unknown:
        typer.echo(f"error: --kind {unknown[0]!r} is not one of {', '.join(kinds)}", err=True)
        raise typer.Exit(2)
    store = open_store(settings.store.url)
    if not isinstance(store, Reaggregating):
        typer.echo("error: this store keeps no aggregates (SQLite computes them on read)", err=True)
        raise typer.Exit(2)
    try:
        for k in kind or kinds:
            store.reaggregate(k, times[0], times[1], gateway=gateway)
            typer.echo(f"recomputed: {k} {start} .. {end} gateway={gateway or '*'}")
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        store.close()


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="Who holds the token; recorded as the actor")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "viewer",
    config: ConfigOption = None,
) -> None:
    """Create a token and print its secret once (store it in a password manager).

    Example:

      akita cloud token create --name ops-sato --role operator

      curl -H "Authorization: Bearer <secret>" http://127.0.0.1:8000/alerts
    """
    from cloud.api.auth import TokenError, create_token
    from cloud.db.base import create_all, make_engine, make_sessionmaker
    from cloud.service import _ensure_sqlite_dir

    settings = _settings(config)
    _ensure_sqlite_dir(settings.database.url)
    engine = make_engine(settings.database.url)
    try:
        create_all(engine)
        secret = create_token(make_sessionmaker(engine), name=name, role=role)
    except TokenError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    typer.echo(secret)
    if os.isatty(2):
        typer.echo(f"token {name!r} ({role}) created; the secret is not shown again", err=True)


@token_app.command("list")
def token_list(config: ConfigOption = None) -> None:
    """List tokens (name, role, created, revoked); secrets are never stored."""
    from cloud.api.auth import list_tokens
    from cloud.db.base import create_all, make_engine, make_sessionmaker
    from cloud.service import _ensure_sqlite_dir

    settings = _settings(config)
    _ensure_sqlite_dir(settings.database.url)
    engine = make_engine(settings.database.url)
    try:
        create_all(engine)
        for t in list_tokens(make_sessionmaker(engine)):
            revoked = t.revoked_at.isoformat() if t.revoked_at else "-"
            typer.echo(f"{t.id}\t{t.name}\t{t.role.value}\t{t.created_at.isoformat()}\t{revoked}")
    finally:
        engine.dispose()
