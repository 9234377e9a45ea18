"""``akita cloud lpwa``: run one LPWA worker (network servers' meter uplinks -> store)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Annotated

import typer

from cloud.errors import CloudError


def run(
    store: Annotated[str, typer.Option(help="InfluxDB URL: influx+http://host:8086/akita")],
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the registry (who owns which devEui)")],
    broker_host: Annotated[str, typer.Option(help="MQTT broker host")] = "127.0.0.1",
    broker_port: Annotated[int, typer.Option(help="MQTT broker port")] = 1883,
    username: Annotated[str | None, typer.Option(help="MQTT user (akita-lpwa-N)")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run one LPWA worker: ChirpStack v4 `up` events under lpwa/<network server>/ ->
    codec -> water_meter readings -> InfluxDB; refused events to the dead-letter topic.

    Meters are provisioned with their network server as owner, e.g.
    `akita cloud device add a1b2c3d4e5f60708 --gateway ns-akita --kind water_meter`.
    The password comes from AKITA_LPWA_PASSWORD. See docs/lpwa.md.
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    from cloud.db.base import create_all, make_engine, make_sessionmaker
    from cloud.lpwa.worker import LpwaSettings, LpwaWorker
    from cloud.registry import Registry
    from cloud.store import open_store

    try:
        series = open_store(store)
        engine = make_engine(db)
        create_all(engine)
        registry = Registry(make_sessionmaker(engine))
        password = os.environ.get("AKITA_LPWA_PASSWORD")
        settings = LpwaSettings(broker_host=broker_host, broker_port=broker_port,
                                username=username, password=password)  # fmt: skip
        worker = LpwaWorker(settings, series, registry)
    except (CloudError, TypeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        worker.start()
    except OSError as exc:
        typer.echo(f"error: broker {broker_host}:{broker_port}: {exc}", err=True)
        raise typer.Exit(1) from exc
    done.wait()
    worker.stop()
    series.close()
