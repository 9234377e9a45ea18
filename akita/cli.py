"""Root Typer app. Each sub-command group lives with the package it drives."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="akita",
    help=(
        "Akita City municipal telemetry: water blocks, sewer pump stations, road flood "
        "sensors, bus and snowplow GPS, and emergency-call units.\n\n"
        "Start with 'akita demo' to watch the whole pipeline run on embedded defaults."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)

# (name, "module:attribute", install extra, help shown when the extra is missing)
SUBCOMMANDS: list[tuple[str, str, str, str]] = [
    ("demo", "akita.demo:app", "demo", "Run sim -> edge -> broker -> cloud -> API on one machine."),
    ("sim", "firmware_sim.cli:app", "sim", "Device simulators and labelled fault scenarios."),
    ("edge", "edge.cli:app", "edge", "The field gateway daemon: poll devices, spool, forward."),
    ("cloud", "cloud.cli:app", "cloud", "Ingest, storage, detection, alerts and the staff API."),
    ("eval", "cloud.detect.evaluate:app", "cloud", "Score the detectors on labelled data."),
    ("dashboards", "dashboards.cli:app", "cloud", "Grafana dashboards as code: build, push."),
    ("schemas", "schemas.cli:app", "", "Wire contracts: export JSON Schema."),
]


def _missing(name: str, extra: str, error: ImportError) -> typer.Typer:
    stub = typer.Typer(help=f"(unavailable: {error.name} is not installed)")

    @stub.callback(invoke_without_command=True)
    def _explain() -> None:
        typer.echo(
            f"'akita {name}' needs the '{extra}' extra: pip install 'akita-telemetry[{extra}]' "
            f"({error.name} is missing)",
            err=True,
        )
        raise typer.Exit(2)

    return stub


def _register() -> None:
    for name, target, extra, help_text in SUBCOMMANDS:
        module_name, attr = target.split(":")
        try:
            sub = getattr(importlib.import_module(module_name), attr)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] == module_name.split(".")[0]:
                continue  # that part of the project is not built yet / not packaged
            sub = _missing(name, extra, exc)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name, help=help_text)
        else:
            app.command(name=name, help=help_text)(sub)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
