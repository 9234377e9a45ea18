"""``akita cloud init-db`` upgrades an older relational database through its migrations
(Alembic), on SQLite and on a real PostgreSQL: no ALTER by hand."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from typer.testing import CliRunner

from cloud.cli import app
from cloud.db import migrations
from cloud.db.base import make_engine


def test_init_db_upgrades_a_database_of_the_first_release(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:  # gateways as the first release made it: 32-bit last_seq
        conn.execute(
            text(
                "CREATE TABLE gateways (gateway_id VARCHAR(64) NOT NULL PRIMARY KEY, "
                "state VARCHAR(16) NOT NULL, last_seq INTEGER NOT NULL, gaps INTEGER NOT NULL, "
                "duplicates INTEGER NOT NULL, version VARCHAR(40), health JSON)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO gateways (gateway_id, state, last_seq, gaps, duplicates) "
                "VALUES ('gw-old', 'online', 7, 0, 0)"
            )
        )
    env = {
        "AKITA_DATABASE__URL": db_url,
        "AKITA_STORE__URL": f"sqlite:///{tmp_path / 'series.db'}",
    }
    result = CliRunner().invoke(app, ["init-db"], env=env)
    assert result.exit_code == 0, result.output
    assert "database: database made before migrations: stamped 0001" in result.output
    assert f"to {migrations.head()}" in result.output
    names = {c["name"] for c in inspect(engine).get_columns("gateways")}
    assert {"seq_checked", "boot_id", "state_since"} - names == {"state_since"}
    with engine.begin() as conn:  # the row survived and takes a 64-bit seq now
        conn.execute(text(f"UPDATE gateways SET last_seq = {2**40}"))
        assert conn.execute(text("SELECT last_seq FROM gateways")).scalar() == 2**40
    again = CliRunner().invoke(app, ["init-db"], env=env)
    assert again.exit_code == 0 and "upgraded" not in again.output
    engine.dispose()
