"""``akita cloud device``: provision which gateway owns which device.

The running ingest workers pick every change up within a few seconds (they poll the
registry version), without a restart. See docs/provisioning.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.errors import CloudError

app = typer.Typer(
    help=(
        "Provision devices: which gateway owns which device, and its kind. A gateway's "
        "data for a device it does not own is refused (dead-lettered). Running ingest "
        "workers pick changes up within seconds.\n\n"
        "Example: akita cloud device import deploy/edge/flood_sensor.toml --config cloud.toml"
    ),
    no_args_is_help=True,
)

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


@contextlib.contextmanager
def _registry_db(
    config: Path | None, *extra_tables: Callable[[Engine], None]
) -> Iterator[sessionmaker[Session]]:
    """The relational database of the settings, tables created (and ``extra_tables``,
    for parts that make their own on first use); errors exit with 2. Shared by the
    ``akita cloud device`` and ``akita cloud user`` commands."""
    from cloud.db.base import create_all, make_engine, make_sessionmaker
    from cloud.service import _ensure_sqlite_dir
    from cloud.settings import CloudSettings

    try:
        settings = CloudSettings.load(config)
        _ensure_sqlite_dir(settings.database.url)
        engine = make_engine(settings.database.url)
        create_all(engine)
        for create in extra_tables:
            create(engine)
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        yield make_sessionmaker(engine)
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()


@app.command("add")
def add(
    device_id: Annotated[str, typer.Argument(help="Device id, unique city-wide")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway that owns it")],
    kind: Annotated[str, typer.Option(help="water_block, manhole_pump, flood_sensor, ...")],
    site: Annotated[str | None, typer.Option(help="Site name or code")] = None,
    district: Annotated[str | None, typer.Option(help="Service district")] = None,
    area: Annotated[str | None, typer.Option(help="Town name (町名)")] = None,
    lat: Annotated[float | None, typer.Option(help="WGS84 latitude")] = None,
    lon: Annotated[float | None, typer.Option(help="WGS84 longitude")] = None,
    config: ConfigOption = None,
) -> None:
    """Register a new device for a gateway.

    Example: akita cloud device add fs-araya --gateway gw-flood-araya-01 --kind flood_sensor
    """
    from cloud.provisioning import add_device, parse_info

    with _registry_db(config) as sm:
        info = parse_info(
            device_id, kind, site=site, district=district, area=area, lat=lat, lon=lon
        )
        done = add_device(sm, info, gateway)
    typer.echo(f"added {done.device_id} ({done.kind}) to gateway {done.gateway_id}")


@app.command("move")
def move(
    device_id: Annotated[str, typer.Argument(help="Device id")],
    to: Annotated[str, typer.Option("--to", help="Gateway that owns it from now on")],
    config: ConfigOption = None,
) -> None:
    """Give a device to another gateway; only that gateway's data for it is accepted."""
    from cloud.provisioning import move_device

    with _registry_db(config) as sm:
        done = move_device(sm, device_id, to)
    typer.echo(f"moved {done.device_id} to gateway {done.gateway_id}")


@app.command("remove")
def remove(
    device_id: Annotated[str, typer.Argument(help="Device id")],
    config: ConfigOption = None,
) -> None:
    """Remove a device: no gateway may send data for it (stored data stays)."""
    from cloud.provisioning import remove_device

    with _registry_db(config) as sm:
        done = remove_device(sm, device_id)
    typer.echo(f"removed {done.device_id} (was on gateway {done.gateway_id})")


@app.command("list")
def list_(
    gateway: Annotated[str | None, typer.Option("--gateway", help="Only this gateway's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
    config: ConfigOption = None,
) -> None:
    """List provisioned devices: id, kind, gateway, site."""
    from cloud.provisioning import dump, list_devices

    with _registry_db(config) as sm:
        devices = list_devices(sm, gateway)
    if as_json:
        typer.echo(dump(devices))
        return
    for d in devices:
        typer.echo(f"{d.device_id}\t{d.kind}\t{d.gateway_id or '-'}\t{d.site or '-'}")


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(help="A gateway's edge config (.toml) or its retained meta (.json)"),
    ],
    config: ConfigOption = None,
) -> None:
    """Provision every device of one gateway from its config file ([gateway] id and the
    [[devices]] ids, kinds and descriptive fields). A device owned by another gateway is
    refused and nothing is written: move it first."""
    from cloud.provisioning import import_devices, read_device_list

    with _registry_db(config) as sm:
        gateway, infos = read_device_list(path)
        added, updated = import_devices(sm, gateway, infos)
    typer.echo(f"gateway {gateway}: {added} devices added, {updated} updated")
