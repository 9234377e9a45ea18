"""``python -m cloud.ingest`` (and ``akita cloud ingest`` where mounted): run one worker."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from typing import Annotated

import typer

from cloud.errors import CloudError
from cloud.logs import setup_logging

app = typer.Typer(
    help=(
        "Run one ingest worker: MQTT telemetry -> validation -> time-series store.\n\n"
        "Start several with the same --group to split the load (shared subscription).\n\n"
        "Example:\n\n"
        "  python -m cloud.ingest --broker-port 1883 "
        "--store influx+http://127.0.0.1:8086/akita --db sqlite:///akita.db\n\n"
        "Every setting can also come from AKITA_INGEST_<NAME> environment variables "
        "(AKITA_INGEST_PASSWORD keeps the password off the command line)."
    ),
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode="markdown",
)


@app.command()
def run(
    store: Annotated[
        str,
        typer.Option(help="Store URL: influx+http://host:8086/akita or sqlite:///series.db"),
    ] = "sqlite:///akita-series.db",
    db: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL of the registry tables (devices, gateways)"),
    ] = None,
    broker_host: Annotated[str | None, typer.Option(help="MQTT broker host")] = None,
    broker_port: Annotated[int | None, typer.Option(help="MQTT broker port")] = None,
    username: Annotated[str | None, typer.Option(help="MQTT user (ingest role)")] = None,
    group: Annotated[str | None, typer.Option(help="Shared-subscription group")] = None,
    client_id: Annotated[
        str | None,
        typer.Option(help="MQTT client id (default: the --username; the shipped broker forces it)"),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Readings per store write")] = None,
    batch_time: Annotated[float | None, typer.Option(help="Longest wait before a write, s")] = None,
    tls: Annotated[bool, typer.Option(help="Connect with TLS")] = False,
    ca_file: Annotated[str | None, typer.Option(help="CA file for --tls")] = None,
    retire: Annotated[
        bool,
        typer.Option(
            help="On stop, leave the shared group and end the session (removing a worker "
            "for good); without it the broker keeps queueing this worker's share"
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run one ingest worker: MQTT telemetry -> validation -> time-series store.

    Start several with the same --group, each with its own broker user
    (akita-ingest-1, akita-ingest-2, ...: deploy/mosquitto/make-service-credential.sh),
    to split the load over a shared subscription; the client id is the username.

    After each write it hands the stored batches on to detection through the broker
    (akita/v1/_detect/<partition>): `akita cloud detect` instances, or the
    `akita cloud run` of the same group, detect on them. Set AKITA_INGEST_DETECT_PARTITIONS
    to the partitions the detectors use (default 1).

    Runs until SIGINT/SIGTERM, then writes and acknowledges what it holds and exits;
    anything unacknowledged is redelivered.

    Example:

        python -m cloud.ingest --broker-port 1883 --username akita-ingest-1 \\
            --store influx+http://127.0.0.1:8086/akita --db sqlite:///akita.db

    Settings also come from `AKITA_INGEST_<NAME>` variables, e.g. AKITA_INGEST_PASSWORD
    (keeps the password off the command line), AKITA_INGEST_BATCH_SIZE.
    """
    setup_logging(log_level)
    from cloud.ingest.settings import IngestSettings
    from cloud.ingest.worker import IngestWorker
    from cloud.metrics import Metrics
    from cloud.registry import Registry
    from cloud.store import open_store

    try:
        settings = IngestSettings.from_env(
            broker_host=broker_host,
            broker_port=broker_port,
            username=username,
            group=group,
            client_id=client_id,
            batch_size=batch_size,
            batch_time_s=batch_time,
            tls=tls or None,
            ca_file=ca_file,
            # no detectors here: every stored batch goes to the detector tier (or to the
            # `akita cloud run` that detects for the group), never nowhere
            handoff=True,
        )
        series = open_store(store)
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    sessionmaker = None
    if db:
        from cloud.db.base import create_all, make_engine, make_sessionmaker

        engine = make_engine(db)
        create_all(engine)
        sessionmaker = make_sessionmaker(engine)
    if sessionmaker is None and not settings.first_seen:
        logging.getLogger(__name__).warning(
            "registry_missing reason=no --db: no device is provisioned, so every reading "
            "is refused (give --db, or AKITA_INGEST_FIRST_SEEN=true in a lab)"
        )
    registry = Registry(sessionmaker, first_seen=settings.first_seen)
    worker = IngestWorker(settings, series, registry, metrics=Metrics())
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    # What is loaded by now lives as long as the process: keep it out of every collection.
    # The hot path makes ~10 short-lived objects a reading, freed within a chunk, so
    # young collections can be rarer too (each one walks every surviving container).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    worker.start()
    done.wait()
    worker.stop(end_session=retire)
    series.close()
