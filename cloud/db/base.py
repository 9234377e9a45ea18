"""Engine and session set-up shared by every table module."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, Engine, TypeDecorator, create_engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from cloud.db.files import private_file, sqlite_path


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and gives them back aware (SQLite forgets tz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            # before SQLite creates it with the umask's mode; -wal/-shm copy this mode
            private_file(path)
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker:  # type: ignore[type-arg]
    return sessionmaker(engine, expire_on_commit=False)


def create_all(engine: Engine) -> None:
    # import every table module so its tables are registered on Base.metadata
    import cloud.db.models  # noqa: F401

    Base.metadata.create_all(engine)
    add_missing_columns(engine)
    from cloud import seq_ledger  # imports the models: not at module level

    seq_ledger.upgrade(engine)


# Columns added to a table after it was first released, as (table, column). create_all
# only creates missing tables, so a database made by an earlier version gets these here
# (nullable, no default: the code treats NULL as "not set yet").
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("gateways", "seq_checked"),
    ("gateways", "boot_id"),
)


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the :data:`ADDED_COLUMNS` an existing database lacks; returns what was added.

    Safe to run again and from several processes at once (one ``ALTER TABLE`` wins, the
    others find the column there).
    """
    added: list[str] = []
    for table_name, column_name in ADDED_COLUMNS:
        if _has_column(engine, table_name, column_name):
            continue
        column = Base.metadata.tables[table_name].c[column_name]
        quote = engine.dialect.identifier_preparer.quote
        ddl = (
            f"ALTER TABLE {quote(table_name)} ADD COLUMN {quote(column_name)} "
            f"{column.type.compile(dialect=engine.dialect)}"
        )
        try:
            with engine.begin() as conn:
                conn.execute(text(ddl))
        except SQLAlchemyError:
            if not _has_column(engine, table_name, column_name):
                raise
            continue  # another process added it meanwhile
        added.append(f"{table_name}.{column_name}")
    return added


def _has_column(engine: Engine, table_name: str, column_name: str) -> bool:
    return column_name in {c["name"] for c in inspect(engine).get_columns(table_name)}
