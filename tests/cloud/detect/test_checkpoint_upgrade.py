"""Detector state from a checkpoint written before a detector gained a field (an upgrade
of the cloud, then a failover or restart from the old checkpoint) restores and feeds on.
Without it the flood sensor, the pump station, the call unit, the water block and the vehicle raised
AttributeError on their next reading: no flood stage, no pump alarm, no emergency call,
no burst from then on."""

from __future__ import annotations

import pickle

from cloud.detect.engine import DetectorEngine
from tests.cloud.detect.helpers import at, kinds, reading


def _old_checkpoint() -> bytes:
    engine = DetectorEngine()
    engine.feed([reading("flood_sensor", "f1", 0, depth=5.0)], {})
    engine.feed([reading("manhole_pump", "p1", 0, level=0.5, pump1_running=False)], {})
    engine.feed([reading("call_unit", "c1", 0, event="heartbeat")], {})
    engine.feed([reading("water_block", "w1", 0, flow=50.0, pressure=0.5)], {})
    engine.feed([reading("vehicle", "bus1", 0, lat=39.7, lon=140.1, speed=10.0)], {})
    # what this version adds, taken away: the state as the previous version wrote it
    del engine.flood.sensors["f1"].last_t
    del engine.pump.stations["p1"].stamps
    del engine.call_unit.pressed_at, engine.call_unit.climate_at
    del engine.water.blocks["w1"].newest
    del engine.vehicle.vehicles["bus1"].newest
    return pickle.dumps(engine.state(), protocol=pickle.HIGHEST_PROTOCOL)


def test_state_from_before_the_late_reading_fields_restores_and_feeds_on() -> None:
    engine = DetectorEngine()
    engine.restore(pickle.loads(_old_checkpoint()))
    out = engine.feed([reading("flood_sensor", "f1", 60, depth=25.0)], {})
    out += engine.feed([reading("manhole_pump", "p1", 60, fault_code=11)], {})
    out += engine.feed([reading("call_unit", "c1", 60, event="button")], {})
    out += engine.feed([reading("water_block", "w1", 60, flow=50.0, pressure=0.05)], {})
    out += engine.feed([reading("vehicle", "bus1", 60, fix=False)], {})
    out += engine.tick(at(600))
    expected = {"button_press", "flood_stage", "pump_fault", "pressure_low", "vehicle_stale"}
    assert expected <= set(kinds(out))
