"""Notification deliveries: one row per message we tried (or chose not) to send.

The recipient is stored only as a salted SHA-256 hash (to count and correlate) and
a masked form (for the staff UI), never in clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.base import Base


class DeliveryRow(Base):
    __tablename__ = "notify_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16), doc="open, update, escalate, renotify")
    audience: Mapped[str] = mapped_column(String(8), doc="staff or resident")
    channel: Mapped[str] = mapped_column(String(8), doc="email, sms or webhook")
    group: Mapped[str | None] = mapped_column(String(80), doc="Contact group (staff)")
    subscription_id: Mapped[int | None] = mapped_column(Integer, doc="SubscriptionRow.id")
    recipient_hash: Mapped[str] = mapped_column(String(64), index=True)
    recipient_masked: Mapped[str] = mapped_column(String(120))
    template: Mapped[str] = mapped_column(String(40))
    lang: Mapped[str] = mapped_column(String(8))
    stage: Mapped[str | None] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(
        String(12), index=True, doc="queued, sent, failed or suppressed"
    )
    reason: Mapped[str | None] = mapped_column(
        String(40), doc="Why suppressed (rate_limit, alert_cap) or failed (permanent, retries)"
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_notify_deliveries_alert_recipient", "alert_id", "recipient_hash"),)


def create_tables(engine: Engine) -> None:
    """Create this module's tables if missing (``create_all`` only imports core models)."""
    Base.metadata.create_all(engine, tables=[DeliveryRow.__table__])  # type: ignore[list-item]
