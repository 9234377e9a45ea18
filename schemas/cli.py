"""``akita schemas``: export the wire contracts as JSON Schema."""

from __future__ import annotations

from pathlib import Path

import typer

from schemas.export import JSON_DIR, write

app = typer.Typer(no_args_is_help=True, help="Wire contracts shared by edge and cloud.")


@app.command("export")
def export(
    out: Path = typer.Option(JSON_DIR, help="Directory to write *.schema.json into."),
) -> None:
    """Regenerate the JSON Schema files (commit them; a test fails when they are stale)."""
    for path in write(out):
        typer.echo(f"wrote {path}")
