"""``akita cloud lpwa``: run one LPWA worker (network servers' meter uplinks -> store)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from cloud.errors import CloudError
from cloud.logs import setup_logging


def run(
    config: Annotated[
        Path | None,
        typer.Option(help="The cloud's settings TOML (as `akita cloud run`; or $AKITA_CONFIG)"),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(help="InfluxDB URL, e.g. influx+http://host:8086/akita (overrides store.url)"),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL of the registry and alerts (overrides database.url)"),
    ] = None,
    broker_host: Annotated[str, typer.Option(help="MQTT broker host")] = "127.0.0.1",
    broker_port: Annotated[int, typer.Option(help="MQTT broker port")] = 1883,
    username: Annotated[str | None, typer.Option(help="MQTT user (akita-lpwa-N)")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run one LPWA worker: ChirpStack v4 `up` events under lpwa/<network server>/ ->
    codec -> water_meter readings -> InfluxDB; refused events to the dead-letter topic.

    Every stored meter hour then goes through the cloud's detectors and alert lifecycle
    (meter_leak, meter_burst, meter_reverse_flow, meter_tamper; a meter silent for 3 days
    is device_offline), with the thresholds, alert and notify settings of --config. Give
    it the same settings file as `akita cloud run`, which ticks the alerts
    (auto-resolve, escalation).

    Meters are provisioned with their network server as owner, e.g.
    `akita cloud device add a1b2c3d4e5f60708 --gateway ns-akita --kind water_meter`.
    The password comes from AKITA_LPWA_PASSWORD. See docs/lpwa.md.
    """
    setup_logging(log_level)
    from cloud.lpwa.detection import MeterDetection
    from cloud.lpwa.worker import LpwaSettings, LpwaWorker
    from cloud.service import CloudService
    from cloud.settings import CloudSettings

    try:
        settings = _overridden(CloudSettings.load(config), store, db)
        service = CloudService(settings)
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    password = os.environ.get("AKITA_LPWA_PASSWORD")
    lpwa = LpwaSettings(broker_host=broker_host, broker_port=broker_port,
                        username=username, password=password)  # fmt: skip
    detection = MeterDetection(service)
    try:
        worker = LpwaWorker(
            lpwa, service.store, service.registry,
            on_readings=detection.on_readings, on_tick=detection.on_tick,
        )  # fmt: skip
    except TypeError as exc:
        service.stop()
        typer.echo(f"error: setting store.url: {exc}", err=True)
        raise typer.Exit(2) from exc
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        worker.start()
    except OSError as exc:
        service.stop()
        typer.echo(f"error: broker {broker_host}:{broker_port}: {exc}", err=True)
        raise typer.Exit(1) from exc
    done.wait()
    worker.stop()
    service.stop()


def _overridden(settings: Any, store: str | None, db: str | None) -> Any:
    """``settings`` with the store and database URLs given on the command line."""
    if store is not None:
        settings = settings.model_copy(
            update={"store": settings.store.model_copy(update={"url": store})}
        )
    if db is not None:
        settings = settings.model_copy(
            update={"database": settings.database.model_copy(update={"url": db})}
        )
    return settings
