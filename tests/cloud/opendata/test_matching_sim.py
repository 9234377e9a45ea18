"""Acceptance: 50 simulated buses on the corridor feed (shared corridor, blocks,
non-timepoint stops), 10 m noise, 0-20 min late, 5 % detouring 500 m off route.

Fixes are sorted by what the bus really does: on its line (offset 0), off route
(more than 250 m from its line: the 200 m limit plus the GPS noise, 3 sigma on each
axis, so the matcher cannot be expected to see the difference sooner) or turning off
(between). "Wrong" counts every fix matched to a trip the bus is not running.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from google.transit.gtfs_realtime_pb2 import TripDescriptor

from cloud.opendata.gtfs_rt import build_vehicle_positions
from cloud.opendata.gtfs_static import GtfsStatic
from cloud.opendata.matching import TripMatcher
from cloud.opendata.trip_updates import TripUpdateConfig, build_trip_updates
from tests.cloud.opendata import bus_sim, rt_validator
from tests.cloud.opendata.corridor_feed import FEED_DIR, build, write

OFF_ROUTE_SURE_M = 250.0


@dataclass
class Score:
    counts: Counter[str] = field(default_factory=Counter)
    next_stop_errors: list[float] = field(default_factory=list)

    @property
    def right_rate(self) -> float:
        return self.counts["right"] / self.counts["on_eval"]

    @property
    def wrong_rate(self) -> float:
        return self.counts["wrong"] / self.counts["fixes"]

    @property
    def mae_s(self) -> float:
        return sum(self.next_stop_errors) / len(self.next_stop_errors)


def simulate(static: GtfsStatic, *, n: int = 50, hours: float = 3.0, seed: int = 7) -> Score:
    matcher = TripMatcher(static)
    score = Score()
    c = score.counts
    for ts, fixes, truth in bus_sim.run(bus_sim.make_buses(n, seed), hours=hours, seed=seed):
        results = matcher.update(fixes)
        feed = build_trip_updates(fixes, results, matcher, now=ts)
        first = {
            e.trip_update.vehicle.id: e.trip_update.stop_time_update[0]
            for e in feed.entity
            if e.trip_update.stop_time_update
        }
        for vid, tr in truth.items():
            m = results[vid].match
            got = m.trip_id if m else None
            c["fixes"] += 1
            c["wrong"] += got is not None and got != tr.trip_id
            if tr.off_route_m > OFF_ROUTE_SURE_M:
                c["off"] += 1
                c["off_matched"] += got is not None
                c["off_flagged"] += results[vid].off_route
            elif tr.off_route_m == 0 and not tr.first_minute:
                c["on_eval"] += 1
                c["right"] += got == tr.trip_id
            su = first.get(vid)
            if (
                got == tr.trip_id
                and tr.steady
                and su is not None
                and tr.next_stop_at
                and su.stop_sequence == tr.next_stop_seq
            ):
                score.next_stop_errors.append(abs(su.arrival.time - tr.next_stop_at))
    print(
        f"sim: {dict(c)} right={score.right_rate:.4f} wrong={score.wrong_rate:.4f} "
        f"next-stop MAE={score.mae_s:.1f} s over {len(score.next_stop_errors)} predictions"
    )
    return score


@pytest.fixture(scope="module")
def utf8_score() -> Score:
    return simulate(GtfsStatic.load(FEED_DIR))


def test_bundled_feed_is_the_generator_output() -> None:
    committed = {p.name: p.read_bytes().decode("utf-8") for p in FEED_DIR.glob("*.txt")}
    assert committed == build(), "regenerate with python -m tests.cloud.opendata.corridor_feed"


def test_late_noisy_buses_get_their_own_trip(utf8_score: Score) -> None:
    c = utf8_score.counts
    assert c["on_eval"] > 30_000 and c["off"] > 50
    assert utf8_score.right_rate >= 0.98
    assert utf8_score.wrong_rate <= 0.005


def test_off_route_buses_get_no_trip_and_are_flagged(utf8_score: Score) -> None:
    assert utf8_score.counts["off_matched"] == 0
    assert utf8_score.counts["off_flagged"] == utf8_score.counts["off"]


def test_next_stop_predictions_within_a_minute(utf8_score: Score) -> None:
    assert len(utf8_score.next_stop_errors) > 10_000
    assert utf8_score.mae_s <= 60.0


def test_cp932_copy_matches_the_same(tmp_path: Path, utf8_score: Score) -> None:
    feed = GtfsStatic.load(write(tmp_path / "cp932", build(), encoding="cp932"))
    assert feed.encoding == "cp932"
    assert feed.routes["R1"].long_name == "秋田駅 - R1 終点"
    # one hour is enough to show the same answers; the whole run is above
    short = simulate(feed, hours=1.0)
    again = simulate(GtfsStatic.load(FEED_DIR), hours=1.0)
    assert short.counts == again.counts


def test_validator_finds_no_error_in_the_produced_feeds(tmp_path: Path) -> None:
    """VehiclePositions and TripUpdates every 30 simulated minutes, then with CANCELED
    on and a third of the blocks never showing up."""
    static = GtfsStatic.load(FEED_DIR)
    prepared = rt_validator.prepare(FEED_DIR, tmp_path)
    buses = bus_sim.make_buses(45, seed=3)
    present = buses[::3] + buses[1::3]
    matcher = TripMatcher(static, created=bus_sim.DAY + timedelta(hours=5, minutes=55))
    cancel = TripUpdateConfig(canceled_after_s=900)
    canceled_seen = 0
    for i, (ts, fixes, _) in enumerate(bus_sim.run(present, hours=2.0, seed=3)):
        results = matcher.update(fixes)
        if i % 120 != 119:
            continue
        vp = build_vehicle_positions(fixes, now=ts, matches=results, static=static)
        tu = build_trip_updates(fixes, results, matcher, now=ts, config=cancel)
        canceled = [
            e.trip_update.trip.trip_id
            for e in tu.entity
            if e.trip_update.trip.schedule_relationship == TripDescriptor.CANCELED
        ]
        served = {e.trip_update.trip.trip_id for e in tu.entity} - set(canceled)
        assert not set(canceled) & served
        by_id = {t.trip_id: t for t in bus_sim.true_trips()}
        missing = {t.block_id for t in by_id.values()} - {b.trips[0].block_id for b in present}
        assert [c for c in canceled if by_id[c].block_id not in missing] == []
        canceled_seen += len(canceled)
        found = rt_validator.findings(prepared, {"vp": vp, "tu": tu}, ts, tmp_path / str(i))
        print(ts, found)
        rt_validator.assert_valid(found, rt_validator.ACCEPTED_WITH_CANCELED)
        default = build_trip_updates(fixes, results, matcher, now=ts)
        rt_validator.assert_valid(
            rt_validator.findings(prepared, {"vp": vp, "tu": default}, ts, tmp_path / f"d{i}")
        )
        assert all(
            e.trip_update.trip.schedule_relationship != TripDescriptor.CANCELED
            for e in default.entity
        )
    assert canceled_seen > 0
