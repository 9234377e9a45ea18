"""Root Typer app. Each sub-command group lives with the package it drives."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

import typer

HELP = (
    "Akita City municipal telemetry: water blocks, sewer pump stations, road flood "
    "sensors, bus and snowplow GPS, and emergency-call units.\n\n"
    "Start with 'akita demo' to watch the whole pipeline run on embedded defaults."
)

# (name, "module:attribute", install extra, help shown in 'akita --help')
SUBCOMMANDS: list[tuple[str, str, str, str]] = [
    ("demo", "akita.demo:app", "demo", "Run sim -> edge -> broker -> cloud -> API on one machine."),
    ("sim", "firmware_sim.cli:app", "sim", "Device simulators and labelled fault scenarios."),
    ("edge", "edge.cli:app", "edge", "The field gateway daemon: poll devices, spool, forward."),
    ("cloud", "cloud.cli:app", "cloud", "Ingest, storage, detection, alerts and the staff API."),
    ("eval", "akita.evaluate:app", "cloud", "Score the detectors on labelled data."),
    ("pilot", "cloud.pilot.cli:app", "cloud", "Smart water meter pilot: the report."),
    ("dashboards", "dashboards.cli:app", "cloud", "Grafana dashboards as code: build, push."),
    ("schemas", "schemas.cli:app", "", "Wire contracts: export JSON Schema."),
]


def _missing(name: str, extra: str, error: ImportError) -> Callable[..., None]:
    def explain(ctx: typer.Context) -> None:
        typer.echo(
            f"'akita {name}' needs the '{extra}' extra: pip install 'akita-telemetry[{extra}]' "
            f"({error.name} is missing)",
            err=True,
        )
        raise typer.Exit(2)

    return explain


def build_app(only: str | None = None) -> typer.Typer:
    """The CLI with every sub-command, or with just ``only`` (which keeps start-up lean)."""
    root = typer.Typer(
        name="akita",
        help=HELP,
        no_args_is_help=True,
        rich_markup_mode="rich",
        pretty_exceptions_show_locals=False,
    )
    for name, target, extra, help_text in SUBCOMMANDS:
        if only is not None and name != only:
            continue
        module_name, attr = target.split(":")
        try:
            sub = getattr(importlib.import_module(module_name), attr)
        except ModuleNotFoundError as exc:
            # a third-party package of another install profile is missing (an edge-only
            # gateway has no FastAPI): the command explains which extra brings it
            if exc.name and exc.name.split(".")[0] in {"akita", "edge", "cloud", "schemas"}:
                raise
            root.command(
                name=name,
                help=f"{help_text} (needs the '{extra}' extra)",
                # whatever follows ('akita cloud run --config x') gets the same explanation
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            )(_missing(name, extra, exc))
            continue
        if isinstance(sub, typer.Typer):
            root.add_typer(sub, name=name, help=help_text)
        else:
            root.command(name=name, help=help_text)(sub)
    return root


def __getattr__(name: str) -> Any:
    # ``from akita.cli import app`` (tests, tools) gets the complete CLI, built on first use
    if name == "app":
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(name)


def main() -> None:
    # Import only the sub-command being run: 'akita edge run' on a 1 GB gateway must not
    # pay for the cloud stack (about 14 MB RSS), and start-up stays fast. '--help' and
    # unknown names build everything so the help lists every command.
    wanted = sys.argv[1] if len(sys.argv) > 1 else None
    names = {name for name, *_ in SUBCOMMANDS}
    build_app(only=wanted if wanted in names else None)()


if __name__ == "__main__":
    main()
