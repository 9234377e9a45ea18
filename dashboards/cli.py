"""``akita dashboards``: regenerate the Grafana JSON, push it to a Grafana server."""

from __future__ import annotations

import difflib
from pathlib import Path

# fail at registration (naming the missing 'cloud' extra), not halfway through a build
import grafana_foundation_sdk  # noqa: F401
import typer

app = typer.Typer(
    help="Grafana dashboards as code: build the JSON from the Python sources, push it.",
    no_args_is_help=True,
)


@app.command()
def build(
    out: Path = typer.Option(None, help="Directory to write to (default: dashboards/json)."),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 if the committed JSON is out of date."
    ),
) -> None:
    """Regenerate dashboards/json/*.json from the Python sources in dashboards/.

    The JSON is committed next to the sources so that a review shows what changes in
    Grafana. Run this after editing a dashboard; CI runs it with --check.

    Example: akita dashboards build
    Example: AKITA_PUBLIC_API_URL=https://api.city.example akita dashboards build --out /srv/dash
    """
    from dashboards.build import JSON_DIR, render, write

    directory = out or JSON_DIR
    if check:
        stale = []
        for name, text in render().items():
            path = directory / name
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                stale.append(name)
                diff = difflib.unified_diff(
                    current.splitlines(), text.splitlines(), str(path), "fresh build", lineterm=""
                )
                typer.echo("\n".join(list(diff)[:40]), err=True)
        if stale:
            typer.echo(f"out of date: {', '.join(stale)} (run 'akita dashboards build')", err=True)
            raise typer.Exit(1)
        typer.echo("dashboards up to date")
        return
    for path in write(directory):
        typer.echo(f"wrote {path}")


@app.command()
def push(
    url: str = typer.Option(..., help="Grafana base URL, e.g. https://grafana.city.example"),
    token: str = typer.Option(
        ..., envvar="GRAFANA_TOKEN", help="Grafana service-account token (or GRAFANA_TOKEN)."
    ),
    influx_url: str = typer.Option(
        "http://localhost:8086",
        envvar="AKITA_INFLUX_URL",
        help="InfluxDB URL as Grafana's server reaches it.",
    ),
    influx_token: str = typer.Option(
        None,
        envvar="AKITA_INFLUX_TOKEN",
        help="InfluxDB token (2.x/3.x, or user:password on 1.8+); sent as 'Authorization: Token'.",
    ),
    database: str = typer.Option("akita", help="InfluxDB database (DBRP database on 2.x)."),
) -> None:
    """Create or update the InfluxDB data source and upload every dashboard.

    Safe to repeat: the data source is updated by its uid ('akita-influxdb') when it
    exists, and dashboards are saved by uid into the 'Akita City' folder.

    Example: GRAFANA_TOKEN=glsa_... akita dashboards push --url http://localhost:3000 \\
      --influx-url http://influxdb:8086
    """
    from dashboards.build import models
    from dashboards.push import PushError
    from dashboards.push import push as do_push

    try:
        result = do_push(
            url,
            token,
            dashboards=models(),
            influx_url=influx_url,
            influx_token=influx_token,
            database=database,
        )
    except PushError as exc:
        typer.echo(f"push failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"data source {result.datasource}; folder {result.folder}; "
        f"{len(result.dashboards)} dashboards: {', '.join(result.dashboards)}"
    )
