"""Schema migrations of the relational store (Alembic), run by ``akita cloud init-db``
and by every component on start (:func:`cloud.db.base.create_all`).

How a database is brought to the code's schema:

- a new, empty database: the tables are created from the models and stamped with the
  newest revision (running every migration on an empty database would only repeat
  what the models already say);
- a database made before migrations existed (tables, no ``alembic_version``): stamped
  with the first revision, :data:`BASELINE`, then upgraded; the migrations look at
  what is there, because such a database may be of any earlier version;
- a database with ``alembic_version``: tables new since then are created from the
  models (a feature's new table needs no migration), then upgraded.

Changing an existing table needs a revision in ``versions/``: never an ``ALTER`` by hand
and never a note in the docs asking operators for one. Processes starting together
upgrade once: on PostgreSQL the upgrade holds an advisory lock, on SQLite an exclusive
``flock`` on a file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

log = logging.getLogger(__name__)

BASELINE = "0001"  # the schema as it was before migrations (any version of it)
_LOCK_KEY = 0x616B697461  # "akita": the advisory lock of schema upgrades
_HERE = Path(__file__).resolve().parent


def config(connection: Connection | None = None) -> Config:
    """An Alembic config for the migrations in this package (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision."""
    rev = ScriptDirectory.from_config(config()).get_current_head()
    assert rev is not None
    return rev


def current(engine: Engine) -> str | None:
    """The database's revision (None: made before migrations, or empty)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> list[str]:
    """Bring the database to :func:`head`; returns what was done (for the CLI)."""
    from cloud.db.base import Base

    with _sqlite_lock(engine), engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            conn.commit()
        try:
            return _upgrade(conn, Base)
        finally:
            if conn.dialect.name == "postgresql":
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()


@contextlib.contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    """SQLite has no advisory lock: an exclusive flock on ``<database>.migrate.lock``."""
    from cloud.db.files import private_file, sqlite_path

    path = sqlite_path(str(engine.url)) if engine.dialect.name == "sqlite" else None
    if path is None:  # another engine, or an in-memory database (one process)
        yield
        return
    lock = path.with_name(path.name + ".migrate.lock")
    private_file(lock)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade(conn: Connection, base: type) -> list[str]:
    tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
    revision = MigrationContext.configure(conn).get_current_revision()
    cfg = config(conn)
    target = head()
    metadata = base.metadata  # type: ignore[attr-defined]
    if revision is None and not tables:
        metadata.create_all(conn)
        conn.commit()
        command.stamp(cfg, target)
        conn.commit()
        return [f"schema created at revision {target}"]
    done = []
    if revision is None:
        command.stamp(cfg, BASELINE)
        conn.commit()
        done.append(f"database made before migrations: stamped {BASELINE}")
        revision = BASELINE
    metadata.create_all(conn)  # tables new since (features add theirs)
    conn.commit()
    if revision != target:
        command.upgrade(cfg, "head")
        conn.commit()
        log.info("schema_upgraded from=%s to=%s", revision, target)
        done.append(f"upgraded from revision {revision} to {target}")
    return done
