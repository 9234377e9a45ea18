"""``akita cloud user``: staff console accounts (people, not API tokens).

Passwords are asked for on the terminal (not echoed, twice) or read from standard input
with ``--password-stdin`` for scripts; never taken as an argument, where ``ps`` and the
shell history would show them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(
    help=(
        "Staff console accounts: sign-in names with a role (viewer < operator < admin) and "
        "an Argon2-hashed password. Every action is recorded under the name.\n\n"
        "Example: akita cloud user add sato --role operator --config cloud.toml"
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
StdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]
ACTOR = "cli"


@contextlib.contextmanager
def _db(config: Path | None) -> Iterator[sessionmaker[Session]]:
    """The settings' database with every table, the console's included."""
    from cloud.db.console import create_tables
    from cloud.device_cli import _registry_db

    with _registry_db(config, create_tables) as sm:
        yield sm


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Sign-in name, recorded as the actor")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "viewer",
    display_name: Annotated[str, typer.Option(help="Name shown in the console")] = "",
    password_stdin: StdinOption = False,
    config: ConfigOption = None,
) -> None:
    """Add a person. Example: akita cloud user add sato --role operator"""
    from cloud.console.users import add_user, check_name, check_role

    with _db(config) as sm:
        check_name(name)
        check_role(role)
        add_user(
            sm,
            name=name,
            role=role,
            password=_password(password_stdin),
            display_name=display_name,
            actor=ACTOR,
        )
    typer.echo(f"user {name!r} ({role}) added", err=True)


@app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument(help="Sign-in name")],
    password_stdin: StdinOption = False,
    config: ConfigOption = None,
) -> None:
    """Set a new password; the person's sessions end and a lockout is lifted."""
    from cloud.console.users import set_password

    with _db(config) as sm:
        set_password(sm, name, _password(password_stdin), actor=ACTOR)
    typer.echo(f"password of {name!r} changed; their sessions have ended", err=True)


@app.command("disable")
def disable(
    name: Annotated[str, typer.Argument(help="Sign-in name")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable again instead")] = False,
    config: ConfigOption = None,
) -> None:
    """Disable an account (its sessions end at once), or --enable it again."""
    from cloud.console.users import set_disabled

    with _db(config) as sm:
        set_disabled(sm, name, not enable, actor=ACTOR)
    typer.echo(f"user {name!r} {'enabled' if enable else 'disabled'}", err=True)


@app.command("list")
def list_(config: ConfigOption = None) -> None:
    """List accounts: name, role, state."""
    from cloud.console.users import list_users

    with _db(config) as sm:
        for u in list_users(sm):
            state = "disabled" if u.disabled else "active"
            typer.echo(f"{u.name}\t{u.role.value}\t{state}\t{u.display_name}")
