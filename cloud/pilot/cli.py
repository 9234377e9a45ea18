"""``akita pilot report``: the smart-meter pilot's figures for a period (issue 22)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cloud.errors import CloudError

app = typer.Typer(
    help="The smart water meter pilot: the figures the waterworks decides roll-out on.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _when(value: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-06-01T00:00+09:00", param_hint=name
        ) from None


@app.command()
def report(
    start: Annotated[
        str,
        typer.Option(
            "--from", help="Period start, ISO 8601 with zone, on the hour: 2026-06-01T00:00+09:00"
        ),
    ],
    end: Annotated[str, typer.Option("--to", help="Period end (exclusive of later hours)")],
    config: Annotated[
        Path | None,
        typer.Option(help="The cloud's settings TOML (store, database), as `akita cloud run`"),
    ] = None,
    store: Annotated[str | None, typer.Option(help="InfluxDB URL (overrides store.url)")] = None,
    db: Annotated[
        str | None, typer.Option(help="Registry and alerts database URL (overrides database.url)")
    ] = None,
    out: Annotated[
        Path,
        typer.Option(help="Directory for pilot-report.json, pilot-meters.csv, pilot-blocks.csv"),
    ] = Path("."),
    store_figures: Annotated[
        bool,
        typer.Option(
            "--store-figures",
            help="Also write the figures to InfluxDB (measurement pilot_report) for the "
            "Water meters dashboard",
        ),
    ] = False,
) -> None:
    """Print the pilot's figures for a period and write them as JSON and CSV.

    - read success per meter and overall: hours stored / hours expected;
    - battery trend: each meter's slope (% per 30 days) and the fleet's distribution;
    - meter_leak alerts opened in the period, per 1,000 meters;
    - non-revenue water per block: (block inflow - sum of its meters' use) / inflow.

    A meter's block is its registry district; the block's inflow is the totaliser of the
    water_block device with the same district. With --store-figures the figures are also
    written as pilot_report points, which the Water meters dashboard shows. See
    docs/lpwa.md.

    Example: akita pilot report --from 2026-06-01T00:00+09:00 --to 2026-06-08T00:00+09:00
    --config cloud.toml --out report/
    """
    from rich.console import Console

    from cloud.pilot import output
    from cloud.pilot.report import build, leak_alerts, period_hours

    t0, t1 = _when(start, "--from"), _when(end, "--to")
    try:
        period_hours(t0, t1)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        store_, sm, devices = _open(config, store, db)
        result = build(store_, devices, leak_alerts(sm, t0, t1), t0, t1)
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    console = Console()
    output.show(result, console)
    for path in output.write(result, out):
        console.print(f"wrote {path}")
    if store_figures:
        from cloud.pilot.points import MEASUREMENT, points

        figures = points(result)
        try:
            store_.write(figures)
        except CloudError as exc:
            typer.echo(f"error: writing the figures: {exc}", err=True)
            raise typer.Exit(2) from exc
        console.print(f"wrote {len(figures)} {MEASUREMENT} points to {store_!r}")


def _open(config: Path | None, store: str | None, db: str | None) -> tuple[Any, Any, Any]:
    """The store (InfluxDB), a sessionmaker and the registry's devices."""
    from cloud.db.base import create_all, make_engine, make_sessionmaker
    from cloud.lpwa.cli import _overridden
    from cloud.registry import Registry
    from cloud.settings import CloudSettings
    from cloud.store import open_store

    settings = _overridden(CloudSettings.load(config), store, db)
    series = open_store(settings.store.url)
    if not hasattr(series, "query"):
        raise CloudError(
            f"setting store.url: {settings.store.url!r}: the pilot report reads "
            "InfluxDB (influx+http://host:8086/db)"
        )
    engine = make_engine(settings.database.url)
    create_all(engine)
    sm = make_sessionmaker(engine)
    return series, sm, Registry(sm).devices()
