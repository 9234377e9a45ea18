"""The labelled export (contract C): format, determinism, and every fault's signature.

Each scenario test exports just enough days (and only the device kinds it needs) and
checks that what the labels claim is what the data shows.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from firmware_sim.export import export
from firmware_sim.parts import parts as sim_parts
from firmware_sim.scenarios import SCENARIOS
from firmware_sim.wbgt import indoor_wbgt
from schemas.devices import DeviceKind, values_model
from schemas.wire import DeviceInfo
from tests.firmware_sim.helpers import Dataset, load, metres_to_polyline, ts

K = DeviceKind
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _export(tmp: Path, scenario: str, days: float, kinds: set[DeviceKind] | None) -> Dataset:
    out = tmp / f"{scenario}.csv"
    export(scenario, out, seed=7, days=days, kinds=kinds)
    return load(out)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    export("demo", a, seed=3, days=0.1)
    export("demo", b, seed=3, days=0.1)
    export("demo", c, seed=4, days=0.1)
    for suffix in ("", ".labels.json", ".devices.json"):
        pa, pb = (
            Path(f"{a}".replace(".csv", suffix or ".csv")),
            Path(f"{b}".replace(".csv", suffix or ".csv")),
        )
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    assert a.read_bytes() != c.read_bytes()


def test_csv_format_and_fields_follow_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "d.csv"
    export("demo", out, seed=1, days=0.05)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "ts,device_id,kind,field,value"
    keys = []
    kinds_seen = set()
    for line in lines[1:]:
        t, dev, kind, fld, val = line.split(",")
        assert TS.match(t), t
        assert fld in values_model(kind).model_fields, (kind, fld)
        assert val not in ("True", "False", "None"), line
        keys.append((t, dev, fld))
        kinds_seen.add(kind)
    assert keys == sorted(keys)
    # every kind the scenario fleets simulate, as their simulator parts declare
    assert kinds_seen == {k for k, part in sim_parts().items() if part.fleet}
    labels = json.loads((tmp_path / "d.labels.json").read_text(encoding="utf-8"))
    assert labels["scenario"] == "demo" and labels["seed"] == 1
    assert TS.match(labels["start"]) and TS.match(labels["end"])
    devices = json.loads((tmp_path / "d.devices.json").read_text(encoding="utf-8"))
    infos = [DeviceInfo.model_validate(d) for d in devices["devices"]]
    assert {i.device_id for i in infos} == set(devices["sites"])
    assert all(devices["sites"][i.device_id]["gateway"] for i in infos)
    assert devices["routes"]


def test_every_scenario_is_listed_with_a_description() -> None:
    needed = {
        "normal_week", "water_leak", "pipe_burst", "stuck_pressure", "pump_fail_to_start",
        "pump_short_cycle", "heavy_rain_flood", "bus_gps_dropout_off_route",
        "snowfall_snowplows", "call_button_press", "heat_wave", "device_offline", "demo",
    }  # fmt: skip
    assert needed <= set(SCENARIOS)
    assert all(len(s.description) > 20 for s in SCENARIOS.values())


def test_normal_week_night_minimum_is_below_the_daily_mean(tmp_path: Path) -> None:
    data = _export(tmp_path, "normal_week", 1.0, {K.WATER_BLOCK})
    assert not [x for x in data.labels["labels"] if not x["info"].get("context")]
    start = ts(data.labels["start"])
    blocks = [d["device_id"] for d in data.devices["devices"] if d["kind"] == "water_block"]
    for dev in blocks:
        flows = [v for _, v in data.get(dev, "flow")]
        night = data.between(dev, "flow", start + 2 * 3600, start + 4 * 3600)  # 02-04 JST
        mean = sum(flows) / len(flows)
        assert min(night) < 0.6 * mean, dev
        totals = [v for _, v in data.get(dev, "totaliser")]
        assert totals == sorted(totals)
        # the totaliser integrates the flow: a day's volume matches the mean flow x 24 h
        assert totals[-1] - totals[0] == pytest.approx(mean * 24, rel=0.05)


def test_leak_raises_the_night_flow(tmp_path: Path) -> None:
    data = _export(tmp_path, "water_leak", 2.25, {K.WATER_BLOCK})
    (leak,) = data.label("leak")
    dev, start = leak["device_id"], ts(data.labels["start"])
    before = min(data.between(dev, "flow", start + 2 * 3600, start + 4 * 3600))
    after = min(
        data.between(dev, "flow", start + 2 * 86400 + 2 * 3600, start + 2 * 86400 + 4 * 3600)
    )
    assert ts(leak["start"]) < start + 2 * 86400 + 2 * 3600
    assert after > before + 0.5 * leak["info"]["flow_m3h"]


def test_burst_is_a_flow_spike_with_a_pressure_drop(tmp_path: Path) -> None:
    data = _export(tmp_path, "pipe_burst", 1.9, {K.WATER_BLOCK})
    (burst,) = data.label("burst")
    dev, a, b = burst["device_id"], ts(burst["start"]), ts(burst["end"])
    flow_in = data.between(dev, "flow", a + 300, b)
    flow_day_before = data.between(dev, "flow", a + 300 - 86400, b - 86400)
    p_in = data.between(dev, "pressure", a + 300, b)
    p_day_before = data.between(dev, "pressure", a + 300 - 86400, b - 86400)
    assert sum(flow_in) / len(flow_in) > 1.8 * sum(flow_day_before) / len(flow_day_before)
    assert max(p_in) < min(p_day_before) - 0.02
    after = data.between(dev, "flow", b + 600, b + 3600)
    assert max(after) < min(flow_in)  # isolated: the spike ends


def test_stuck_pressure_returns_one_constant(tmp_path: Path) -> None:
    data = _export(tmp_path, "stuck_pressure", 1.0, {K.WATER_BLOCK})
    (stuck,) = data.label("stuck_sensor")
    dev, a = stuck["device_id"], ts(stuck["start"])
    after = data.between(dev, "pressure", a + 60, a + 86400)
    before = data.between(dev, "pressure", a - 7200, a)
    assert len(set(after)) == 1 and len(after) > 60
    assert len(set(before)) > 10
    assert len(set(data.between(dev, "flow", a + 60, a + 86400))) > 10  # flow still moves


def test_pump_fail_to_start_sets_faults_and_the_well_rises(tmp_path: Path) -> None:
    data = _export(tmp_path, "pump_fail_to_start", 0.5, {K.MANHOLE_PUMP})
    (lab,) = data.label("pump_fail_to_start")
    dev, a = lab["device_id"], ts(lab["start"])
    facts = data.devices["sites"][dev]
    assert set(data.between(dev, "fault_code", data_start(data), a)) == {0.0}
    after_codes = set(data.between(dev, "fault_code", a + 60, a + 6 * 3600))
    assert after_codes == {19.0}
    assert not any(data.between(dev, "pump1_running", a + 60, a + 6 * 3600))
    assert not any(data.between(dev, "pump2_running", a + 60, a + 6 * 3600))
    levels = data.between(dev, "level", a, a + 6 * 3600)
    assert max(levels) >= facts["high_level_m"] > facts["start_level_m"]
    assert levels[-1] > levels[0]


def data_start(data: Dataset) -> float:
    return ts(data.labels["start"])


def _short_runs(p1: list[bool], p2: list[bool]) -> int:
    """Runs seen in one sample only (shorter than two poll intervals)."""
    n = 0
    for seq in (p1, p2):
        padded = [False, *seq, False]
        n += sum(
            1
            for i in range(1, len(padded) - 1)
            if padded[i] and not padded[i - 1] and not padded[i + 1]
        )
    return n


def test_short_cycling_multiplies_short_pump_runs(tmp_path: Path) -> None:
    data = _export(tmp_path, "pump_short_cycle", 0.6, {K.MANHOLE_PUMP})
    (lab,) = data.label("pump_short_cycle")
    dev, a = lab["device_id"], ts(lab["start"])
    s = data_start(data)

    def per_hour(x: float, y: float) -> float:
        p1 = data.between(dev, "pump1_running", x, y)
        p2 = data.between(dev, "pump2_running", x, y)
        return _short_runs(p1, p2) / ((y - x) / 3600)

    before, after = per_hour(s, a), per_hour(a + 60, s + 0.6 * 86400)
    assert after >= 6 > 1 >= before


def test_flood_stage_labels_are_exactly_the_crossings(tmp_path: Path) -> None:
    data = _export(tmp_path, "heavy_rain_flood", 0.5, {K.FLOOD_SENSOR})
    labels = data.label("flood_stage")
    assert {x["info"]["stage"] for x in labels} == {"caution", "warning", "danger"}
    sensors = [d["device_id"] for d in data.devices["devices"] if d["kind"] == "flood_sensor"]
    for dev in sensors:
        depth = data.get(dev, "depth")
        for stage, cm in data.devices["sites"][dev]["stages_cm"].items():
            ups = [t for (t0, v0), (t, v) in itertools.pairwise(depth) if v0 < cm <= v]
            mine = [x for x in labels if x["device_id"] == dev and x["info"]["stage"] == stage]
            assert [ts(x["start"]) for x in mine] == ups[: len(mine)], (dev, stage)
            assert len(mine) >= 1 if ups else not mine
        rain = dict(data.get(dev, "rain_intensity"))
        rising = [t for (t0, v0), (t, v) in itertools.pairwise(depth) if v > v0 + 0.5]
        drain = data.devices["sites"][dev]["drain_mmh"]
        assert all(rain[t] > 0.6 * drain for t in rising)  # depth rises only in heavy rain
    assert any(x["kind"] == "heavy_rain" and x["info"]["context"] for x in data.labels["labels"])


def test_gps_dropout_and_off_route(tmp_path: Path) -> None:
    data = _export(tmp_path, "bus_gps_dropout_off_route", 0.7, {K.VEHICLE})
    (drop,) = data.label("gps_dropout")
    dev, a, b = drop["device_id"], ts(drop["start"]), ts(drop["end"])
    assert data.between(dev, "fix", a, b) and not any(data.between(dev, "fix", a, b))
    assert not data.between(dev, "lat", a, b)
    assert sum(data.between(dev, "fix", a - 3600, a)) > 100
    (off,) = data.label("off_route")
    dev, a, b = off["device_id"], ts(off["start"]), ts(off["end"])
    route = data.devices["routes"][off["info"]["route_id"]]
    lat = data.get(dev, "lat")
    lon = dict(data.get(dev, "lon"))
    far = [metres_to_polyline(v, lon[t], route) for t, v in lat if a + 120 <= t < b - 120]
    near = [metres_to_polyline(v, lon[t], route) for t, v in lat if a - 3600 <= t < a]
    assert far and min(far) > 200
    assert max(near) < 60


def test_snowplows_sweep_only_after_the_snow_starts(tmp_path: Path) -> None:
    data = _export(tmp_path, "snowfall_snowplows", 1.2, {K.VEHICLE})
    (snow,) = data.label("snowfall")
    assert snow["info"]["context"] is True
    a = ts(snow["start"])
    plows = [d["device_id"] for d in data.devices["devices"] if d.get("vehicle_type") == "snowplow"]
    for dev in plows:
        down = data.get(dev, "plow_down")
        assert not any(v for t, v in down if t < a)
        working = [t for t, v in down if v]
        assert working, dev
        speeds = dict(data.get(dev, "speed"))
        assert sum(speeds[t] for t in working if t in speeds) / len(working) > 8  # km/h


def test_button_press_and_cancel_rows(tmp_path: Path) -> None:
    data = _export(tmp_path, "call_button_press", 0.9, {K.CALL_UNIT})
    presses = data.label("button_press")
    assert presses
    for p in presses:
        events = dict((t, v) for t, v in data.get(p["device_id"], "event"))
        assert events[ts(p["start"])] == "button"
        if p["end"] is not None:
            assert events[ts(p["end"])] == "cancel"
    all_buttons = sum(
        1 for (_, f), s in data.series.items() if f == "event" for _, v in s if v == "button"
    )
    assert all_buttons == len(presses)


def test_heat_labels_start_where_indoor_wbgt_crosses(tmp_path: Path) -> None:
    data = _export(tmp_path, "heat_wave", 1.6, {K.CALL_UNIT})
    labels = data.label("heat_wbgt")
    assert {x["info"]["stage"] for x in labels} == {"severe_warning", "danger"}
    units = [d["device_id"] for d in data.devices["devices"] if d["kind"] == "call_unit"]
    for dev in units:
        temp, rh = data.get(dev, "temperature"), dict(data.get(dev, "humidity"))
        wbgt = [(t, indoor_wbgt(v, rh[t])) for t, v in temp]
        for stage, thr in (("severe_warning", 28.0), ("danger", 31.0)):
            mine = [
                ts(x["start"])
                for x in labels
                if x["device_id"] == dev and x["info"]["stage"] == stage
            ]
            first = next((t for t, w in wbgt if w >= thr), None)
            assert (mine[0] if mine else None) == first, (dev, stage)


def test_offline_devices_and_gateway_send_nothing(tmp_path: Path) -> None:
    data = _export(tmp_path, "device_offline", 0.7, {K.MANHOLE_PUMP, K.CALL_UNIT, K.VEHICLE})
    offline = data.label("device_offline")
    assert len({x["device_id"].split("-")[0] for x in offline} & {"ps", "cu", "bus", "plow"}) == 3
    for lab in offline:
        dev, a, b = lab["device_id"], ts(lab["start"]), ts(lab["end"])
        fld = {"ps": "level", "cu": "event", "bus": "fix", "plow": "fix"}[dev.split("-")[0]]
        assert not data.between(dev, fld, a, b)
        assert data.between(dev, fld, a - 3 * 3600, a) and data.between(dev, fld, b, b + 3 * 3600)
    (gw,) = data.label("gateway_offline")
    a, b = ts(gw["start"]), ts(gw["end"])
    members = [d for d, f in data.devices["sites"].items() if f["gateway"] == gw["device_id"]]
    assert members
    for (dev, _), s in data.series.items():
        if dev in members:
            assert not [t for t, _ in s if a <= t < b]


def test_demo_crosses_a_flood_stage_and_presses_a_button_in_the_first_hour(tmp_path: Path) -> None:
    data = _export(tmp_path, "demo", 0.05, {K.CALL_UNIT})
    start = data_start(data)
    firsts: dict[str, float] = {}
    for x in data.labels["labels"]:
        firsts[x["kind"]] = min(firsts.get(x["kind"], 1e12), ts(x["start"]) - start)
    assert firsts["flood_stage"] < 3600
    assert firsts["button_press"] < 3600
