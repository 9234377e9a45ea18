"""``akita edge``: run the gateway daemon, or check a config and read every device once."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from edge.check_report import DeviceCheck, render, to_json
from edge.config import Device, EdgeConfig, load_config
from edge.errors import ConfigError, DeviceError
from edge.logs import setup_logging
from edge.quality import judge, limits

app = typer.Typer(
    help=(
        "The field gateway daemon: poll Modbus devices, listen to GPS and call units, spool "
        "every reading on disk and forward it to the MQTT broker.\n\n"
        "Example: akita edge check --config deploy/edge/water_block.toml"
    ),
    no_args_is_help=True,
)

CONFIG_OPTION = typer.Option(
    Path("/etc/akita/edge.toml"), "--config", "-c", help="Gateway config (TOML)."
)


def _load(path: Path) -> EdgeConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(f"config error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def run(
    config: Path = CONFIG_OPTION,
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run the gateway until SIGTERM or Ctrl-C, then flush what it can and exit 0.

    Logs go to stdout, one key=value event per line (journald-friendly). Readings are
    spooled in [gateway] spool_path and survive a crash, a kill -9 or a reboot.

    Example: akita edge run --config /etc/akita/edge.toml
    """
    from edge.agent import Agent

    setup_logging(log_level)
    cfg = _load(config)
    asyncio.run(Agent(cfg).run())


@app.command()
def check(
    config: Path = CONFIG_OPTION,
    stream_wait: float = typer.Option(
        5.0, help="Seconds to wait for the first message of a GPS or call-unit device."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document (gateway, devices, ok) instead of a table."
    ),
) -> None:
    """Validate a config, read every device once and print a table.

    Exit code 2 when the config is invalid (the message names the file, the device and
    the field), 1 when a device could not be read, a register block of it failed, or a
    value cannot be trusted (NaN, Inf, out of the field's range; shown in red with the
    reason), 0 otherwise. A GPS or call unit whose
    line opens but stays quiet for --stream-wait seconds counts as ok (call units speak
    at their heartbeat); one sending only garbage fails.

    Device ids are never cut: in a terminal too narrow for the table, each device gets
    its own line instead. --json gives the same results for scripts.

    Example: akita edge check --config deploy/edge/manhole_pump.toml

    Example: akita edge check --config deploy/edge/water_block.toml --json
    """
    setup_logging("error")
    cfg = _load(config)
    results = asyncio.run(_check_all(cfg, stream_wait))
    if as_json:
        typer.echo(to_json(cfg.gateway.id, str(config), results))
    else:
        console = Console()
        console.print(render(cfg.gateway.id, str(config), results, console.width))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


async def _check_all(cfg: EdgeConfig, stream_wait: float) -> list[DeviceCheck]:
    from edge.drivers import PollDriver, create

    results: list[DeviceCheck] = []
    for dev in cfg.devices:
        drv = create(dev, cfg)
        ok, reason, requests = False, None, None
        values: dict[str, Any] | None = None
        invalid: dict[str, str] = {}
        missing: dict[str, str] = {}
        try:
            await drv.open()
            if isinstance(drv, PollDriver):
                values = await drv.read()
                requests = drv.requests
                missing = dict(drv.missing)
            else:
                values = await asyncio.wait_for(anext(aiter(drv.stream())), stream_wait)
            ok = True
        except DeviceError as exc:
            reason = exc.reason
        except (TimeoutError, StopAsyncIteration):
            # the line is open; a call unit may only speak at its next heartbeat
            last = None if isinstance(drv, PollDriver) else drv.last_error
            ok = last is None
            reason = f"line open, nothing received within {stream_wait:g} s"
            if last:
                reason += f" (last error: {last})"
        finally:
            with contextlib.suppress(DeviceError, OSError):
                await drv.close()
        if values is not None:
            values, invalid = _trust(dev, values)
        ok = ok and not invalid and not missing
        results.append(
            DeviceCheck(
                dev.id,
                dev.kind.value,
                dev.driver,
                ok,
                requests,
                values,
                reason,
                invalid,
                missing,
            )
        )
    return results


def _trust(dev: Device, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The trusted values, and field -> "reason, got value" for the others."""
    good, bad = judge(dev, values, limits(dev))
    return good, {k: f"{why}, got {values[k]!r}" for k, why in bad.items()}
