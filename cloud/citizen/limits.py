"""Rate limits of the public forms, counted in the relational database so that they hold
across restarts and across every process sharing it.

Each counted action is one row per scope (``address``, ``ip``) keyed by an HMAC of the
address or IP under the install's link key: the table never holds a contact address, and
the key cannot be reversed by trying every phone number. A limit is a sliding hour.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.citizen.errors import CitizenError
from cloud.citizen.subscriptions import link_key
from cloud.db.citizen import RateEventRow

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Limit:
    scope: str  # "address" or "ip"
    value: str
    per_hour: int


class RateLimited(CitizenError):
    """``scope``'s limit of ``per_hour`` actions is used up."""

    def __init__(self, scope: str, per_hour: int) -> None:
        super().__init__(f"rate limit scope={scope} per_hour={per_hour}")
        self.scope = scope
        self.per_hour = per_hour


def client_key(host: str | None) -> str:
    """The client's IP as counted: an IPv6 address by its /64 (one subscriber's network)."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _key(sm: sessionmaker[Session], scope: str, value: str) -> str:
    msg = f"{scope}:{value.strip().lower()}".encode()
    return hmac.new(link_key(sm), msg, hashlib.sha256).hexdigest()


def take(
    sm: sessionmaker[Session], limits: Sequence[Limit], *, now: datetime | None = None
) -> None:
    """Count one action under every limit, or raise :class:`RateLimited` (nothing counted).

    The rows are committed before counting, so of concurrent requests each sees at least
    those committed before it: the limit is never exceeded, at worst one more is refused.
    """
    now = now or datetime.now(UTC)
    keyed = [(lim, _key(sm, lim.scope, lim.value)) for lim in limits]
    with sm() as s, s.begin():
        rows = [RateEventRow(scope=lim.scope, key=key, at=now) for lim, key in keyed]
        s.add_all(rows)
    with sm() as s:
        for lim, key in keyed:
            count = s.scalar(
                select(func.count())
                .select_from(RateEventRow)
                .where(
                    RateEventRow.scope == lim.scope,
                    RateEventRow.key == key,
                    RateEventRow.at > now - WINDOW,
                )
            )
            if (count or 0) > lim.per_hour:
                exceeded = lim
                break
        else:
            return
    with sm() as s, s.begin():
        s.execute(delete(RateEventRow).where(RateEventRow.id.in_([r.id for r in rows])))
    log.warning("citizen_rate_limited scope=%s per_hour=%s", exceeded.scope, exceeded.per_hour)
    raise RateLimited(exceeded.scope, exceeded.per_hour)


def prune(sm: sessionmaker[Session], *, now: datetime | None = None) -> int:
    """Delete events older than the window; returns how many."""
    now = now or datetime.now(UTC)
    with sm() as s, s.begin():
        result = s.execute(delete(RateEventRow).where(RateEventRow.at <= now - WINDOW))
    return int(getattr(result, "rowcount", 0) or 0)
