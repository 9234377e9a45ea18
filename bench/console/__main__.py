"""Server time of every console page with a city-scale database.

Data: 3,600 devices (flood sensors, pump stations, water blocks, call units, vehicles)
spread over Akita City, 10,000 alerts (a few hundred still active) with their audit
events, 5,000 residents' reports over six months, 40 gateways, 200 maintenance windows,
and a day of readings for the device whose page is measured. SQLite for both stores
(the development default; PostgreSQL and InfluxDB are not started here).

Each page is requested ``--rounds`` times in-process through the ASGI app (Starlette's
test client: no network), signed in as an admin; the time is from sending the request
to the whole body received. Goal: p95 <= 300 ms per page.

Usage::

    python -m bench.console [--rounds 30]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from cloud.api.app import create_app
from cloud.console.users import add_user
from cloud.db.citizen import ReportRow, create_tables
from cloud.db.models import AlertEventRow, AlertRow, DeviceRow, GatewayRow, MaintenanceWindowRow
from cloud.service import CloudService
from cloud.settings import CloudSettings
from cloud.store.base import Point

KINDS = [
    ("flood_sensor", 300),
    ("manhole_pump", 600),
    ("water_block", 200),
    ("call_unit", 2000),
    ("vehicle", 500),
]
SEVERITIES = ["Extreme", "Severe", "Moderate", "Minor"]
PASSWORD = "bench password 123"
GOAL_MS = 300.0


def seed(service: CloudService, rng: random.Random) -> dict[str, str]:
    now = datetime.now(UTC)
    engine = service.engine
    create_tables(engine)
    devices = []
    for kind, n in KINDS:
        for i in range(n):
            devices.append(
                {
                    "device_id": f"{kind[:2]}-{i:05d}",
                    "kind": kind,
                    "gateway_id": f"gw-{i % 40:02d}",
                    "site": f"{kind} site {i}",
                    "district": f"d{i % 7}",
                    "area": f"町{i % 90}",
                    "lat": 39.6 + rng.random() * 0.25,
                    "lon": 140.0 + rng.random() * 0.25,
                    "state": "offline" if rng.random() < 0.03 else "online",
                    "state_reason": None,
                    "last_seen": now - timedelta(minutes=rng.randint(0, 60)),
                }
            )
    alerts, events = [], []
    for i in range(10_000):
        d = rng.choice(devices)
        started = now - timedelta(minutes=rng.randint(1, 60 * 24 * 180))
        state = "open" if i < 200 else "acknowledged" if i < 300 else "resolved"
        aid = f"al-bench{i:08d}"
        alerts.append(
            {
                "id": aid,
                "dedup_key": f"{d['device_id']}:k{i}",
                "kind": rng.choice(
                    ["flood_stage", "pump_fail", "night_flow", "heat", "button_press"]
                ),
                "severity": rng.choice(SEVERITIES),
                "state": state,
                "device_id": d["device_id"],
                "site": d["site"],
                "area": d["area"],
                "lat": d["lat"],
                "lon": d["lon"],
                "title": f"bench alert {i}",
                "message": "",
                "value": 1.0,
                "public": False,
                "started_at": started,
                "updated_at": started,
                "resolved_at": None,
                "extra": {"stage": "danger"} if i % 50 == 0 else {},
            }
        )
        events.append(
            {
                "alert_id": aid,
                "at": started,
                "actor": "system",
                "action": "open",
                "from_state": None,
                "to_state": "open",
                "note": "bench",
            }
        )
    reports = []
    for i in range(5_000):
        created = now - timedelta(hours=rng.randint(1, 24 * 180))
        confirmed = created + timedelta(hours=rng.randint(2, 300)) if rng.random() < 0.7 else None
        reports.append(
            {
                "ref": f"AK-2026-{i + 1:06d}",
                "category": "road",
                "subcategory": "pothole",
                "description": f"穴があります {i}",
                "address": "山王",
                "location_source": "address",
                "status": "confirmed" if confirmed else rng.choice(["received", "triaged"]),
                "department": rng.choice(["道路維持課", "河川課", "公園課", None]),
                "created_at": created,
                "updated_at": created,
                "confirmed_at": confirmed if confirmed and confirmed < now else None,
            }
        )
    windows = [
        {
            "site": f"manhole_pump site {i}",
            "starts_at": now + timedelta(days=i % 30),
            "ends_at": now + timedelta(days=i % 30, hours=8),
            "reason": "bench",
            "created_by": "bench",
            "created_at": now,
        }
        for i in range(200)
    ]
    gateways = [
        {"gateway_id": f"gw-{i:02d}", "state": "online", "last_seq": 10, "gaps": 0, "duplicates": 0}
        for i in range(40)
    ]
    with engine.begin() as conn:
        conn.execute(insert(DeviceRow), devices)
        conn.execute(insert(AlertRow), alerts)
        conn.execute(insert(AlertEventRow), events)
        conn.execute(insert(ReportRow), reports)
        conn.execute(insert(MaintenanceWindowRow), windows)
        conn.execute(insert(GatewayRow), gateways)
    service.registry.load()
    # a day of one-minute readings for the flood sensor whose pages are measured
    service.store.write(
        [
            Point(
                "flood_sensor",
                {"device": "fl-00001"},
                {"depth": 5.0 + (i % 30), "rain_intensity": 1.0},
                now - timedelta(minutes=i),
            )
            for i in range(1440)
        ]
    )
    with service.sessionmaker() as s, s.begin():
        s.add(
            AlertRow(
                id="al-bench-chart",
                dedup_key="fl-00001:flood_stage",
                kind="flood_stage",
                severity="Extreme",
                state="open",
                device_id="fl-00001",
                title="bench",
                message="",
                public=False,
                started_at=now - timedelta(minutes=30),
                updated_at=now,
                extra={"stage": "danger"},
            )
        )
    return {"alert": "al-bench-chart", "device": "fl-00001", "report": "AK-2026-000042"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    rng = random.Random(19)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        settings = CloudSettings.from_mapping(
            {
                "environment": "test",
                "store": {"url": f"sqlite:///{d / 'telemetry.db'}"},
                "database": {"url": f"sqlite:///{d / 'akita.db'}"},
            }
        )
        service = CloudService(settings)
        t0 = time.perf_counter()
        ids = seed(service, rng)
        print(
            "seeded 3,600 devices, 10,000 alerts, 5,000 reports in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        add_user(service.sessionmaker, name="bench", role="admin", password=PASSWORD, actor="bench")
        client = TestClient(create_app(service))
        page = client.get("/console/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert (
            client.post(
                "/console/signin", data={"name": "bench", "password": PASSWORD, "csrf": csrf}
            ).status_code
            == 200
        )
        pages = {
            "overview": "/console/",
            "map data (3,600 markers)": "/console/map.json",
            "alerts": "/console/alerts",
            "alerts filtered": "/console/alerts?state=resolved&severity=Severe&site=pump",
            "alerts page 100": "/console/alerts?page=100",
            "alert detail + chart": f"/console/alerts/{ids['alert']}",
            "devices": "/console/devices",
            "devices offline": "/console/devices?state=offline",
            "device detail + 24 h charts": f"/console/devices/{ids['device']}",
            "gateways": "/console/gateways",
            "reports queue": "/console/reports",
            "report detail": f"/console/reports/{ids['report']}",
            "report KPI": "/console/reports/kpi",
            "maintenance": "/console/maintenance",
            "admin": "/console/admin",
        }
        print(f"{'page':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  bytes")
        worst = 0.0
        for name, url in pages.items():
            times = []
            size = 0
            for _ in range(args.rounds):
                start = time.perf_counter()
                r = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200, (url, r.status_code, r.text[:200])
                size = len(r.content)
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            worst = max(worst, p95)
            print(f"{name:32} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}  {size}")
        verdict = "met" if worst <= GOAL_MS else "NOT met"
        print(f"worst p95 {worst:.1f} ms; goal p95 <= {GOAL_MS:.0f} ms per page: {verdict}")
        service.stop()


if __name__ == "__main__":
    main()
