"""``akita sim``: list scenarios, run a fleet behind real protocols, export labelled data."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from firmware_sim.scenarios import SCENARIOS
from firmware_sim.sites import attribution
from schemas.devices import DeviceKind

app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Device simulators with labelled fault scenarios.\n\n"
        "Start with 'akita sim list', then e.g. 'akita sim run demo --speed 60' or "
        "'akita sim export water_leak --out leak.csv'."
    ),
)
console = Console()


class Scale(StrEnum):
    SMALL = "small"
    CITY = "city"


class Calendar(StrEnum):
    RECENT = "recent"
    SCENARIO = "scenario"


class Streams(StrEnum):
    PTY = "pty"
    TCP = "tcp"


def _check_scenario(name: str) -> str:
    if name not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {name!r}; try one of: {', '.join(SCENARIOS)}")
    return name


@app.command("list")
def list_scenarios(
    as_json: bool = typer.Option(
        False, "--json", help="Print the scenarios as JSON (name, start, days, description)."
    ),
) -> None:
    """Show the scenarios, their start date, default length and what they inject.

    Scenario names are never cut; a terminal too narrow for the table gets one
    scenario per line instead.

    Example: akita sim list

    Example: akita sim list --json
    """
    rows = [
        {
            "scenario": s.name,
            "starts": "{:04d}-{:02d}-{:02d}".format(*s.date),
            "days": s.days,
            "description": s.description,
        }
        for s in SCENARIOS.values()
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    here = Console()  # the terminal's width now (the module's console fixed it at import)
    here.print(_scenario_view(rows, here.width))


_LIST_TITLE = "Scenarios (seeded; the same --seed gives the same run)"
_MIN_DESCRIPTION = 20  # a narrower "what happens" column is one word per line


def _scenario_view(rows: list[dict[str, Any]], width: int) -> RenderableType:
    longest = max(len(r["scenario"]) for r in rows)
    # 4 columns: 5 borders + 2 spaces of padding each; "starts (JST)" is 12 wide
    if longest + 12 + 4 + 5 + 8 + _MIN_DESCRIPTION <= width:
        table = Table(title=_LIST_TITLE)
        table.add_column("scenario", style="bold", no_wrap=True, min_width=longest)
        table.add_column("starts (JST)", no_wrap=True)
        table.add_column("days", justify="right", no_wrap=True)
        table.add_column("what happens", ratio=1, overflow="fold")
        for r in rows:
            table.add_row(r["scenario"], r["starts"], f"{r['days']:g}", r["description"])
        return table
    lines: list[RenderableType] = [Text(_LIST_TITLE, style="italic")]
    for r in rows:
        lines.append(Text.assemble((r["scenario"], "bold"), f"  {r['starts']}, {r['days']:g} d"))
        lines.append(Padding(Text(r["description"], overflow="fold"), (0, 0, 0, 4)))
    return Group(*lines)


@app.command("run")
def run(
    scenario: str = typer.Argument(..., callback=_check_scenario, help="Scenario name."),
    speed: float = typer.Option(
        1.0, min=0.01, max=10_000, help="Simulated seconds per real second (60 = 1 h/min)."
    ),
    seed: int = typer.Option(1, help="Random seed; the same seed gives the same city."),
    scale: Scale = typer.Option(Scale.SMALL, help="small (a handful each) or city (3,591)."),
    workdir: Path = typer.Option(Path("sim-run"), help="Where clock, labels, configs go."),
    host: str = typer.Option("127.0.0.1", help="Address the TCP listeners bind to."),
    mqtt_host: str = typer.Option("127.0.0.1", help="Broker host written into edge configs."),
    mqtt_port: int = typer.Option(1883, help="Broker port written into edge configs."),
    streams: Streams | None = typer.Option(
        None, help="NMEA / call-unit lines on pty or tcp (default: pty small, tcp city)."
    ),
    offset_hours: float = typer.Option(0.0, help="Start this many hours into the scenario."),
    calendar: Calendar = typer.Option(
        Calendar.RECENT,
        help="recent: move the scenario to start at the latest 00:00 JST (fresh timestamps); "
        "scenario: keep its own date, as exports do.",
    ),
    duration: float | None = typer.Option(
        None, help="Stop after this many real seconds (default: until Ctrl-C)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO."),
) -> None:
    """Serve a scenario's fleet over Modbus TCP/RTU, NMEA and AKCU until Ctrl-C.

    Writes the sim clock (clock.json), labels.json, devices.json and one edge config per
    gateway under --workdir, and prints where every device listens.

    Example: akita sim run demo --speed 60 --workdir /tmp/sim
    then: akita edge run --config /tmp/sim/edge/gw-small-01.toml
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    asyncio.run(
        _run(
            scenario,
            speed=speed,
            seed=seed,
            scale=scale.value,
            workdir=workdir,
            host=host,
            mqtt_host=mqtt_host,
            mqtt_port=mqtt_port,
            streams=streams.value if streams else None,
            offset_s=offset_hours * 3600.0,
            duration=duration,
            calendar=calendar.value,
        )
    )


async def _run(
    scenario: str,
    *,
    speed: float,
    seed: int,
    scale: str,
    workdir: Path,
    host: str,
    mqtt_host: str,
    mqtt_port: int,
    streams: str | None,
    offset_s: float,
    duration: float | None,
    calendar: str,
) -> None:
    from firmware_sim.fleet import start_fleet

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with console.status(f"starting {scenario} ({scale}) ..."):
        fleet = await start_fleet(
            scenario,
            seed=seed,
            scale=scale,
            speed=speed,
            workdir=workdir,
            host=host,
            mqtt_host=mqtt_host,
            mqtt_port=mqtt_port,
            streams=streams,
            sim_offset_s=offset_s,
            calendar=calendar,
        )
    try:
        _print_fleet(fleet, scale)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    finally:
        await fleet.stop()
        console.print("[bold]stopped[/bold]")


def _print_fleet(fleet: object, scale: str) -> None:
    from firmware_sim.fleet import RunningFleet

    assert isinstance(fleet, RunningFleet)
    out = Console()  # the terminal's width now (the module's console fixed it at import)
    table = Table(title=f"{fleet.scenario}: devices and where they listen")
    for col in ("gateway", "device", "kind", "endpoint"):
        table.add_column(col)
    if scale == "small":
        for d in fleet.devices:
            table.add_row(d.gateway, d.device_id, d.kind, d.endpoint)
    else:  # 3,591 rows help nobody: one row per gateway and kind
        groups: Counter[tuple[str, str]] = Counter((d.gateway, d.kind) for d in fleet.devices)
        where: dict[tuple[str, str], set[str]] = {}
        for d in fleet.devices:
            ep = d.endpoint.rsplit(" unit", 1)[0]
            where.setdefault((d.gateway, d.kind), set()).add(ep)
        for (gw, kind), n in sorted(groups.items()):
            eps = sorted(where[(gw, kind)])
            shown = eps[0] if len(eps) == 1 else f"{len(eps)} endpoints ({eps[0]} ...)"
            table.add_row(gw, f"{n} devices", kind, shown)
    out.print(table)
    c = fleet.clock
    out.print(
        f"clock file   {fleet.clock_path}  (speed {c.speed:g}, starts {c.now().isoformat()})",
        soft_wrap=True,  # a path cut by a newline cannot be copied
    )
    out.print(f"labels       {fleet.labels_path}", soft_wrap=True)
    out.print(f"devices      {fleet.devices_path}", soft_wrap=True)
    for p in fleet.edge_configs:
        out.print(f"edge config  {p}", soft_wrap=True)
    out.print(f"[dim]{attribution()}[/dim]")
    out.print("Ctrl-C stops the simulators.")


@app.command("export")
def export_cmd(
    scenario: str = typer.Argument(..., callback=_check_scenario, help="Scenario name."),
    out: Path = typer.Option(..., "--out", help="CSV path; sidecars go next to it."),
    seed: int = typer.Option(1, help="Random seed; the same seed gives byte-identical files."),
    scale: Scale = typer.Option(Scale.SMALL, help="small or city."),
    days: float | None = typer.Option(None, min=0.001, help="Length (default: the scenario's)."),
    kind: list[DeviceKind] | None = typer.Option(
        None, help="Only these device kinds in the CSV (repeatable)."
    ),
) -> None:
    """Write a labelled dataset without any protocol: CSV + labels + devices (contract C).

    Files: OUT (ts,device_id,kind,field,value), OUT.labels.json, OUT.devices.json.
    Parquet is not offered (pyarrow is not a dependency).

    Example: akita sim export water_leak --out data/leak.csv --seed 3 --days 4
    """
    from firmware_sim.export import export

    if out.suffix != ".csv":
        raise typer.BadParameter(f"--out must end in .csv (got {out})", param_hint="--out")
    with console.status(f"exporting {scenario} ..."):
        csv_path, labels, devices, n = export(
            scenario,
            out,
            seed=seed,
            scale=scale.value,
            days=days,
            kinds=set(kind) if kind else None,
        )
    console.print(f"wrote {csv_path} ({n} rows), {labels}, {devices}", soft_wrap=True)
