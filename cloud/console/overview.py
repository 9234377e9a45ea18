"""What the overview page counts, and the map's markers: a few grouped queries, so the
page stays fast with a city's 3,600 devices and thousands of alerts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.manager import ACTIVE_STATES
from cloud.citizen.flood import STAGE_LABELS
from cloud.db.citizen import ReportRow
from cloud.db.models import AlertRow, DeviceRow

SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor")
STAGES = ("danger", "warning", "caution")
WAITING_REPORTS = ("received", "triaged")
# marker state, worst first; its Japanese text goes on the map and in the legend
MARKER_LABELS = {
    "danger": "危険",
    "alert": "警報",
    "offline": "オフライン",
    "unknown": "不明",
    "online": "正常",
}
_SERIOUS = ("Extreme", "Severe")


@dataclass(frozen=True)
class Overview:
    alerts: dict[str, dict[str, int]]  # severity -> {"open": n, "acknowledged": n}
    stages: dict[str, int]  # flood stage -> sensors at that stage (active flood alerts)
    devices_by_state: dict[str, int]
    devices_total: int
    reports_waiting: dict[str, int]


def overview(sm: sessionmaker[Session]) -> Overview:
    with sm() as s:
        alerts: dict[str, dict[str, int]] = {
            sev: dict.fromkeys(ACTIVE_STATES, 0) for sev in SEVERITIES
        }
        rows = s.execute(
            select(AlertRow.severity, AlertRow.state, func.count())
            .where(AlertRow.state.in_(ACTIVE_STATES))
            .group_by(AlertRow.severity, AlertRow.state)
        )
        for sev, state, n in rows:
            alerts.setdefault(sev, dict.fromkeys(ACTIVE_STATES, 0))[state] = n
        stages: Counter[str] = Counter()
        for (extra,) in s.execute(
            select(AlertRow.extra).where(
                AlertRow.state.in_(ACTIVE_STATES), AlertRow.kind == "flood_stage"
            )
        ):
            stage = (extra or {}).get("stage")
            if stage in STAGES:
                stages[stage] += 1
        by_state = dict(
            s.execute(select(DeviceRow.state, func.count()).group_by(DeviceRow.state)).all()
        )
        waiting = dict(
            s.execute(
                select(ReportRow.status, func.count())
                .where(ReportRow.status.in_(WAITING_REPORTS))
                .group_by(ReportRow.status)
            ).all()
        )
    return Overview(
        alerts=alerts,
        stages={st: stages.get(st, 0) for st in STAGES},
        devices_by_state={str(k): int(v) for k, v in by_state.items()},
        devices_total=sum(by_state.values()),
        reports_waiting={st: int(waiting.get(st, 0)) for st in WAITING_REPORTS},
    )


def _marker_state(device_state: str, severities: list[str]) -> str:
    if any(sev in _SERIOUS for sev in severities):
        return "danger"
    if severities:
        return "alert"
    return device_state if device_state in ("offline", "online") else "unknown"


def markers(sm: sessionmaker[Session]) -> list[dict[str, Any]]:
    """One marker per located device: state, and a text label for anything not normal."""
    with sm() as s:
        active: dict[str, list[tuple[str, str, dict[str, Any] | None]]] = {}
        for dev, sev, kind, extra in s.execute(
            select(AlertRow.device_id, AlertRow.severity, AlertRow.kind, AlertRow.extra).where(
                AlertRow.state.in_(ACTIVE_STATES)
            )
        ):
            if dev is not None:
                active.setdefault(dev, []).append((sev, kind, extra))
        devices = s.execute(
            select(
                DeviceRow.device_id,
                DeviceRow.kind,
                DeviceRow.site,
                DeviceRow.state,
                DeviceRow.lat,
                DeviceRow.lon,
            ).where(DeviceRow.lat.is_not(None), DeviceRow.lon.is_not(None))
        ).all()
    out = []
    for device_id, kind, site, state, lat, lon in devices:
        alerts = active.get(device_id, [])
        mstate = _marker_state(state, [a[0] for a in alerts])
        label = MARKER_LABELS[mstate]
        stage = next(
            ((extra or {}).get("stage") for _, k, extra in alerts if k == "flood_stage"), None
        )
        if stage in STAGE_LABELS:
            label = f"冠水{STAGE_LABELS[stage]}"
        out.append(
            {
                "id": device_id,
                "kind": kind,
                "site": site,
                "lat": lat,
                "lon": lon,
                "state": mstate,
                "label": label,
            }
        )
    return out
