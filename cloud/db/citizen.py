"""Citizen problem reports (道路/河川/公園) and their photos.

A report carries a sequential reference number (``AK-2026-000123``) for phone calls to staff;
its public status page is reached only through a random capability token, of which only the
SHA-256 hash is stored (``status_token_hash``). ``confirmed_at`` is when staff confirmed
the problem on site; the one-week confirmation rate is computed from it and
``created_at``. The photo is kept with its size and pixels in its own row; the bytes
column is deferred so listing reports never loads it. The stored photo is re-encoded pixel
data only: no EXIF, XMP or comments.

Rate limits of the public forms are rows in ``citizen_rate_events`` (one per counted
action), so they hold across restarts and across processes sharing the database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    inspect,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from cloud.db.base import Base


class ReportRow(Base):
    __tablename__ = "citizen_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref: Mapped[str | None] = mapped_column(String(20), unique=True, index=True)
    status_token_hash: Mapped[str | None] = mapped_column(
        String(64), unique=True, index=True, doc="SHA-256 of the status page's capability token"
    )
    category: Mapped[str] = mapped_column(String(16), index=True, doc="road, river or park")
    subcategory: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, doc="as typed; escaped on output")
    address: Mapped[str | None] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    location_source: Mapped[str] = mapped_column(String(16), doc="address, point or exif")
    status: Mapped[str] = mapped_column(String(16), index=True, default="received")
    priority: Mapped[str | None] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(80))
    public_note: Mapped[str | None] = mapped_column(Text, doc="shown on the status page")
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    triaged_at: Mapped[datetime | None]
    triaged_by: Mapped[str | None] = mapped_column(String(80))
    confirmed_at: Mapped[datetime | None] = mapped_column(doc="on-site confirmation time")
    confirmed_by: Mapped[str | None] = mapped_column(String(80))
    closed_at: Mapped[datetime | None]
    photo: Mapped[ReportPhotoRow | None] = relationship(
        back_populates="report", cascade="all, delete-orphan", uselist=False
    )


class ReportPhotoRow(Base):
    __tablename__ = "citizen_report_photos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("citizen_reports.id"), unique=True)
    mime: Mapped[str] = mapped_column(String(32), doc="from the decoded content, not the name")
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    exif_lat: Mapped[float | None] = mapped_column(Float)
    exif_lon: Mapped[float | None] = mapped_column(Float)
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    report: Mapped[ReportRow] = relationship(back_populates="photo")


class LinkKeyRow(Base):
    """The install's random key for HMAC-signed unsubscribe links in alert messages
    (the subscriber's own token is not stored, so alert messages cannot carry it)."""

    __tablename__ = "citizen_link_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), doc="hex")
    created_at: Mapped[datetime]


class RateEventRow(Base):
    """One counted action (a confirmation sent) under a limit ``scope`` (``address`` or
    ``ip``). ``key`` is an HMAC of the address or IP, never the address itself."""

    __tablename__ = "citizen_rate_events"
    __table_args__ = (Index("ix_citizen_rate_events_scope_key_at", "scope", "key", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64), doc="hex HMAC-SHA256")
    at: Mapped[datetime] = mapped_column(index=True)


# columns added after the table was first released: (table, column)
_ADDED_COLUMNS = (("citizen_reports", "status_token_hash"),)


def create_tables(engine: Engine) -> None:
    """Create the citizen tables (and the subscriptions table they sit beside) if missing,
    and add columns an older database lacks."""
    from cloud.db.models import SubscriptionRow

    names = (SubscriptionRow, ReportRow, ReportPhotoRow, LinkKeyRow, RateEventRow)
    tables = [Base.metadata.tables[m.__tablename__] for m in names]
    Base.metadata.create_all(engine, tables=tables)
    for table, column in _ADDED_COLUMNS:
        _add_column(engine, table, column)


def _has_column(engine: Engine, table: str, column: str) -> bool:
    return column in {c["name"] for c in inspect(engine).get_columns(table)}


def _add_column(engine: Engine, table: str, column: str) -> None:
    if _has_column(engine, table, column):
        return
    col = Base.metadata.tables[table].c[column]
    quote = engine.dialect.identifier_preparer.quote
    ddl = (
        f"ALTER TABLE {quote(table)} ADD COLUMN {quote(column)} "
        f"{col.type.compile(dialect=engine.dialect)}"
    )
    try:
        with engine.begin() as conn:
            conn.execute(text(ddl))
    except SQLAlchemyError:
        if not _has_column(engine, table, column):  # another process may have added it
            raise
