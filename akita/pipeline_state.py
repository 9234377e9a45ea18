"""What the demo's live panel shows: the broker's and the store's state beside the counters.

A pipeline that has stalled must never look like a quiet one, so each part is either
``ok`` or ``down`` with the reason a user can act on (connection refused, database not
found, credentials refused). The state is a plain value, read once a second off the
event loop; the panel only renders it.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cloud.errors import CloudError

if TYPE_CHECKING:
    from cloud.service import CloudService
    from cloud.store.base import TimeSeriesStore

PROBE_TIMEOUT_S = 1.5  # the panel refreshes every second; a hung server must not freeze it


@dataclass(frozen=True)
class PartState:
    """``ok`` True/False, or None before the first check; ``reason`` says why it is down."""

    ok: bool | None
    reason: str | None = None

    def label(self) -> str:
        if self.ok is None:
            return "starting"
        return "ok" if self.ok else f"down: {self.reason or 'no reason given'}"


@dataclass(frozen=True)
class PipelineState:
    broker: PartState
    store: PartState
    uptime_s: float
    points_total: int
    points_per_s: float
    devices_online: int
    devices_total: int
    gateways_online: int
    alerts_open: int
    refused: int = 0  # messages the ingest dead-lettered (reasons in demo.log)
    recent_alerts: list[Any] = field(default_factory=list)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``<password>`` (safe to print and log)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":<password>@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def broker_reachable(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when a TCP connection to the broker opens, else why it did not."""
    try:
        with socket.create_connection((host, port), timeout):
            return None
    except OSError as exc:
        return f"{host}:{port} {exc.strerror or type(exc).__name__}".strip()


class StoreProbe:
    """Checks the time-series store with a short timeout, on its own connection.

    For InfluxDB it asks for the database's retention policies, which fails both when
    the server is down and when the database is missing, each with its own message.
    """

    def __init__(self, url: str) -> None:
        from cloud.store import open_store
        from cloud.store.influx import InfluxStore

        self._url = url
        self._influx: InfluxStore | None = None
        if url.split("://", 1)[0].lower().startswith("influx"):
            store = open_store(_quick(url))
            assert isinstance(store, InfluxStore), "an influx URL opens an InfluxStore"
            self._influx = store

    def check(self, store: TimeSeriesStore) -> PartState:
        if self._influx is None:
            return PartState(True) if store.ping() else PartState(False, "store does not answer")
        try:
            self._influx.query(f'SHOW RETENTION POLICIES ON "{self._influx.database}"')
        except CloudError as exc:
            return PartState(False, str(exc))
        return PartState(True)

    def close(self) -> None:
        if self._influx is not None:
            self._influx.close()


def _quick(url: str) -> str:
    """The same store URL with a short timeout and no retries."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    query.update(timeout=str(PROBE_TIMEOUT_S), retries="0")
    return urlunsplit(parts._replace(query=urlencode(query)))


def read_state(service: CloudService, probe: StoreProbe, started: float) -> PipelineState:
    """One reading of every part and counter (blocking: call it off the event loop)."""
    snap = service.snapshot()
    worker = service.ingest
    return PipelineState(
        broker=_broker_state(service),
        store=_store_state(service, probe),
        uptime_s=time.monotonic() - started,
        points_total=int(snap["points_total"]),
        points_per_s=float(snap["points_per_s"]),
        devices_online=int(snap["devices_online"]),
        devices_total=int(snap["devices_total"]),
        gateways_online=int(snap["gateways_online"]),
        alerts_open=int(snap["alerts_open"]),
        refused=worker.health().dead_letters if worker is not None else 0,
        recent_alerts=list(snap["recent_alerts"]),
    )


def _broker_state(service: CloudService) -> PartState:
    worker = service.ingest
    if worker is None:
        return PartState(False, "the ingest is not running")
    if worker.health().broker_connected:
        return PartState(True)
    ingest = service.settings.ingest
    reason = broker_reachable(ingest.broker_host, ingest.broker_port)
    return PartState(False, reason or "the ingest is not connected yet (reconnecting)")


def _store_state(service: CloudService, probe: StoreProbe) -> PartState:
    state = probe.check(service.store)
    if not state.ok:
        return state
    worker = service.ingest
    if worker is not None:
        health = worker.health()
        # the server answers but refuses the writes (a missing database, credentials)
        if not health.store_ok:
            return PartState(False, health.store_error)
    return state


def render(state: PipelineState) -> Panel:
    """The live panel: parts first, so a stall is read before the counters."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for name, part in (("broker", state.broker), ("store", state.store)):
        style = "green" if part.ok else ("red" if part.ok is False else "yellow")
        table.add_row(name, Text(part.label(), style=style))
    table.add_row("uptime", f"{state.uptime_s:,.0f} s")
    table.add_row("readings stored", f"{state.points_total:,}")
    table.add_row("readings/s", f"{state.points_per_s:,.1f}")
    if state.refused:
        # refused readings are not stored: say so beside the counter that stays flat
        refused = f"{state.refused:,} (the reasons are in demo.log)"
        table.add_row("messages refused", Text(refused, style="red"))
    table.add_row("devices online", f"{state.devices_online} / {state.devices_total}")
    table.add_row("gateways online", f"{state.gateways_online}")
    table.add_row("alerts open", f"{state.alerts_open}")
    alerts = Table("severity", "kind", "device", "title", box=None, pad_edge=False)
    alerts.columns[2].no_wrap = True  # a device id is never cut
    for a in state.recent_alerts[:8]:
        alerts.add_row(a.severity, a.kind, a.device_id or "-", a.title)
    return Panel(
        Group(table, alerts, "\nThe curl line above reads the alerts. Ctrl-C stops."),
        title="akita demo",
    )
