"""The flood status page: each registered flood sensor's stage from its latest depth in
the store (10 / 20 / 30 cm), worst first, with the nearest flood-designated site."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cloud.citizen.flood import flood_status, stage_for
from cloud.db.models import DeviceRow
from cloud.shelters import nearest_flood_shelter
from cloud.store.base import Point

SENSORS = {
    # device: (site, lat, lon, depths oldest..newest)
    "fl-dry": ("旭南一丁目", 39.7100, 140.1090, [40.0, 3.0]),  # fell back: latest counts
    "fl-caution": ("山王大通り", 39.7186, 140.1025, [10.0]),
    "fl-warning": ("新屋アンダーパス", 39.6950, 140.0700, [19.9, 24.0]),
    "fl-danger": ("土崎駅前", 39.7560, 140.0710, [30.0]),
    "fl-silent": ("仁井田", 39.6700, 140.1200, []),
}


def test_stage_thresholds() -> None:
    assert [stage_for(x) for x in (None, 0, 9.99, 10, 19.9, 20, 29.9, 30, 120)] == [
        None,
        "normal",
        "normal",
        "caution",
        "caution",
        "warning",
        "warning",
        "danger",
        "danger",
    ]


def test_flood_page_lists_every_sensor_worst_first(citizen) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC).replace(microsecond=0)
    with citizen.sm() as s, s.begin():
        for dev, (site, lat, lon, _) in SENSORS.items():
            s.add(DeviceRow(device_id=dev, kind="flood_sensor", site=site, lat=lat, lon=lon))
        s.add(DeviceRow(device_id="wb-1", kind="water_block", site="配水ブロック"))
    points = [
        Point("flood_sensor", {"device": dev}, {"depth": d}, now - timedelta(minutes=len(ds) - i))
        for dev, (_, _, _, ds) in SENSORS.items()
        for i, d in enumerate(ds)
    ]
    citizen.store.write(points)

    rows = flood_status(citizen.sm, citizen.store)
    assert [r.device_id for r in rows] == [
        "fl-danger",
        "fl-warning",
        "fl-caution",
        "fl-dry",
        "fl-silent",
    ]
    assert [r.stage_label for r in rows] == ["危険", "警戒", "注意", "平常", "データなし"]
    for r in rows:
        _, lat, lon, _ = SENSORS[r.device_id]
        assert r.shelter == nearest_flood_shelter(lat, lon, inland_flood=True)
        assert r.shelter is not None and r.shelter.flood

    page = citizen.client.get("/citizen/flood").text
    order = [page.index(SENSORS[r.device_id][0]) for r in rows]
    assert order == sorted(order)
    assert "配水ブロック" not in page  # only flood sensors
    danger_row = re.search(r"土崎駅前.*?</tr>", page, re.S)
    assert danger_row and "30.0 cm" in danger_row.group(0)
    assert rows[0].shelter is not None and rows[0].shelter.name in danger_row.group(0)
    assert "出典: 国土地理院" in page
