"""``akita cloud detect``: one instance of the detector tier (its own process)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from cloud.errors import CloudError


def run(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Settings TOML file (default: $AKITA_CONFIG): database, broker (the ingest "
            "section), detector settings, alerts and notifications",
            envvar="AKITA_CONFIG",
            dir_okay=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="This instance's name, unique (default: detect-<host>-<pid>)"),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(help="Partitions (default: ingest.detect_partitions; the same everywhere)"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run one detector instance: it takes the partitions the live instances assign to it
    (rendezvous hashing), restores each from its checkpoint, reads what the ingest workers
    handed off for them through the broker, and raises the alerts.

    Start two or more (on different hosts) for failover: when one dies, the others take
    its partitions within lease_ttl_s (10 s) plus a heartbeat. The ingest workers must
    hand off (ingest.handoff = true for `akita cloud run`; `akita cloud ingest` always
    does). Broker accounts: AKITA_DETECT_USERNAME (e.g. 'akita-detect-{p}': {p} becomes the
    partition, one account per partition where the client id is the username) and
    AKITA_DETECT_PASSWORD. More settings: AKITA_DETECT_LEASE_TTL_S,
    AKITA_DETECT_CHECKPOINT_S (at most 60), AKITA_DETECT_REORDER_S,
    AKITA_DETECT_CLIENT_PREFIX.

    Example:

      akita cloud detect --config /etc/akita/cloud.toml --name detect-a
    """
    from cloud.detect.tier import TierSettings, check_accounts
    from cloud.logs import setup_logging
    from cloud.service import CloudService
    from cloud.settings import CloudSettings

    setup_logging(log_level)
    try:
        settings = CloudSettings.load(config)
        tier = TierSettings.from_env(
            name=name, partitions=partitions or settings.ingest.detect_partitions
        )
        check_accounts(tier, settings.ingest)
        service = CloudService(settings)
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service.start(ingest=False, detect=tier)
    try:
        stop.wait()
    finally:
        service.stop()
