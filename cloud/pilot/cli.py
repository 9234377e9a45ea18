"""``akita pilot report``: the smart-meter pilot's figures for a period (issue 22)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from cloud.errors import CloudError

app = typer.Typer(
    help="The smart water meter pilot: the figures the waterworks decides roll-out on.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

MAX_DAYS = 366
# where the city's zone comes from: the day the commands' "once per day" means
ZONE_SETTING = "commands.timezone"


def _when(value: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{name} {value!r} is not an ISO 8601 time, e.g. 2026-06-01T00:00+09:00"
        ) from None


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The day's local midnight with its fixed UTC offset: aware datetimes that share a
    ZoneInfo subtract as wall times (a DST day would count 24 h), fixed offsets do not."""
    local = datetime.combine(day, time(), zone)
    offset = local.utcoffset()
    assert offset is not None
    return local.astimezone(timezone(offset))


def last_days(days: int, zone: str, now: datetime) -> tuple[datetime, datetime]:
    """The ``days`` whole days in ``zone`` that end at the most recent midnight there
    (``now`` itself at midnight); raises ValueError naming the option or setting."""
    from cloud.pilot.report import period_hours

    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"--days {days}: give 1 to {MAX_DAYS} whole days")
    if now.tzinfo is None:
        raise ValueError(f"now {now.isoformat()} has no time zone")
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"setting {ZONE_SETTING} {zone!r} is not a time zone: give an IANA name "
            "such as Asia/Tokyo"
        ) from None
    today = now.astimezone(tz).date()
    start, end = _midnight(today - timedelta(days=days), tz), _midnight(today, tz)
    try:
        period_hours(start, end)
    except ValueError:
        raise ValueError(
            f"--days {days}: midnight in {zone} ({start.isoformat()}) is not on the hour "
            "in UTC and readings are hourly: give --from and --to"
        ) from None
    return start, end


def check_options(start: str | None, end: str | None, days: int | None) -> None:
    """Either --days or both --from and --to; raises ValueError naming the options."""
    if days is not None:
        if start is not None or end is not None:
            raise ValueError(
                "--days cannot be combined with --from/--to: give --days N alone, "
                "or --from and --to"
            )
    elif start is None and end is None:
        raise ValueError(
            "give the period: --days N (the N days up to the last midnight) or --from and --to"
        )
    elif start is None or end is None:
        given, missing = ("--from", "--to") if end is None else ("--to", "--from")
        raise ValueError(f"{given} needs {missing}: give both, or --days N alone")


def period(
    start: str | None, end: str | None, days: int | None, zone: str, now: datetime
) -> tuple[datetime, datetime]:
    """The report's period from --from/--to or from --days (see :func:`last_days`);
    raises ValueError naming the options when they are mixed, missing or wrong."""
    from cloud.pilot.report import period_hours

    check_options(start, end, days)
    if days is not None:
        return last_days(days, zone, now)
    assert start is not None and end is not None
    t0, t1 = _when(start, "--from"), _when(end, "--to")
    period_hours(t0, t1)
    return t0, t1


def _now() -> datetime:
    return datetime.now(UTC)


@app.command()
def report(
    start: Annotated[
        str | None,
        typer.Option(
            "--from", help="Period start, ISO 8601 with zone, on the hour: 2026-06-01T00:00+09:00"
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Period end (exclusive of later hours)")
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            help="Instead of --from/--to: the N whole days that end at the last midnight in "
            f"the city's time zone (setting {ZONE_SETTING}, Asia/Tokyo), as a timer runs it",
        ),
    ] = None,
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

    Scheduled (deploy/systemd/akita-pilot-report.timer, daily): akita pilot report
    --days 30 --store-figures --config cloud.toml --out report/
    """
    from rich.console import Console

    from cloud.pilot import output
    from cloud.pilot.report import build, leak_alerts

    try:
        check_options(start, end, days)  # before the settings are read
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        settings = _settings(config, store, db)
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        t0, t1 = period(start, end, days, settings.commands.timezone, _now())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        store_, sm, devices = _open_settings(settings)
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


def _settings(config: Path | None, store: str | None, db: str | None) -> Any:
    from cloud.lpwa.cli import _overridden
    from cloud.settings import CloudSettings

    return _overridden(CloudSettings.load(config), store, db)


def _open(config: Path | None, store: str | None, db: str | None) -> tuple[Any, Any, Any]:
    """The store (InfluxDB), a sessionmaker and the registry's devices."""
    return _open_settings(_settings(config, store, db))


def _open_settings(settings: Any) -> tuple[Any, Any, Any]:
    from cloud.db.base import create_all, make_engine, make_sessionmaker
    from cloud.registry import Registry
    from cloud.store import open_store

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
