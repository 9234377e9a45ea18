"""The synthetic L-Town generator and the detection-limit curve (no shared data needed)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from akita.cli import app as akita_app
from cloud.detect import battledim, synthetic
from cloud.detect.leak_scoring import Alarm, Leak

runner = CliRunner()
CAL = synthetic.Calibration.load()
RESP = synthetic.Response.load()


def _one_leak_run(zone: str, size: float, kind: str = "abrupt") -> synthetic.Run:
    run = synthetic.plan(1, 7, RESP)[0]
    i = next(k for k, sh in enumerate(RESP.shares) if (sh[2] > 0.5) == (zone == "tank"))
    sl = run.leaks[0]
    leak = dataclasses.replace(sl.leak, size_m3h=size, kind=kind, peak=sl.leak.start)
    shares = (float(RESP.shares[i][0]), float(RESP.shares[i][1]), float(RESP.shares[i][2]))
    return dataclasses.replace(run, leaks=[synthetic.SynthLeak(leak, shares)])


def test_shipped_tables_cover_the_network_and_conserve_the_leak() -> None:
    assert len(RESP.links) > 800 and len(CAL.profile) == synthetic.SLOTS
    # each leak's flow goes somewhere: the two inflows or the tank, within 2 %
    assert np.allclose(RESP.shares.sum(axis=1), 1.0, atol=0.02)
    assert 0.0 < CAL.night_sigma_rel < 0.1 and CAL.mean_flow > 0


def test_block_leak_shows_in_the_balance_and_tank_leak_in_the_pump() -> None:
    for zone in ("block", "tank"):
        run = _one_leak_run(zone, 10.0)
        free = dataclasses.replace(run, leaks=[])
        _, with_leak = synthetic.flows(run, CAL, seed=3)
        _, without = synthetic.flows(free, CAL, seed=3)
        after = slice(-5 * synthetic.SLOTS, None)  # the leak runs for days 0..~10 of its episode
        start = int((run.leaks[0].leak.start - run.start).total_seconds() // 300)
        on = slice(start + synthetic.SLOTS, start + 8 * synthetic.SLOTS)

        def bal(c: dict[str, np.ndarray], s: slice) -> float:
            return float((c["p227"][s] + c["p235"][s] - c["PUMP_1"][s]).mean())

        if zone == "block":
            assert bal(with_leak, on) - bal(without, on) == pytest.approx(10.0, abs=0.5)
        else:
            assert abs(bal(with_leak, on) - bal(without, on)) < 1.0
            pumped = with_leak["PUMP_1"][on].mean() - without["PUMP_1"][on].mean()
            assert pumped == pytest.approx(10.0, abs=3.0)  # tank level swing: ±1 cycle
        assert bal(with_leak, after) == pytest.approx(bal(without, after), abs=0.5)


def test_written_run_reads_back_as_battledim_data(tmp_path: Path) -> None:
    run = synthetic.plan(2, 5, RESP)[0]
    synthetic.write_run(run, CAL, 5, tmp_path, "synth")
    series, leaks, _ = battledim.load([tmp_path / "synth"])
    assert list(series.columns) == ["p227", "p235", "PUMP_1"]
    assert len(series.times) == run.days * synthetic.SLOTS
    assert [lk.link_id for lk in leaks] == [sl.leak.link_id for sl in run.leaks]
    assert [lk.size_m3h for lk in leaks] == [sl.leak.size_m3h for sl in run.leaks]


def test_calibrate_gives_back_the_generator_that_made_the_flows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # half a year of the generator's own flows, with known constants, stands in for the
    # real ones: calibrate must recover the level net of the season (the plain median
    # counts January-June's season twice) and the generator it ships must give back the
    # measured sigmas, measured as the real ones were
    monkeypatch.setattr(synthetic, "CAL_RUNS", 40)
    truth = dataclasses.replace(CAL, mean_flow=140.0, night_sigma_rel=0.02, day_sigma_rel=0.006)
    start = datetime(2018, 1, 1, tzinfo=UTC)
    times, cols = synthetic.flows(synthetic.Run(start, 181), truth, seed=11)
    got = synthetic.calibrate(times, cols, datetime(2018, 7, 1, tzinfo=UTC))
    assert got["mean_flow"] == pytest.approx(140.0, rel=0.03)
    m = got["measured"]
    night, day = (
        m["generator_night_to_night_sigma_m3h"][0],
        m["generator_daily_mean_day_to_day_sigma_m3h"][0],
    )
    assert night == pytest.approx(m["night_to_night_sigma_m3h"], rel=0.05)
    assert day == pytest.approx(m["daily_mean_day_to_day_sigma_m3h"], rel=0.05)
    assert m["generator_daily_mean_m3h"] == pytest.approx(m["daily_mean_m3h"], rel=0.02)
    assert synthetic.Calibration(**{k: v for k, v in got.items() if k != "measured"})


def test_plan_spreads_sizes_kinds_and_seasons() -> None:
    runs = synthetic.plan(300, 1, RESP)
    leaks = [sl.leak for r in runs for sl in r.leaks]
    sizes = [lk.size_m3h or 0.0 for lk in leaks]
    assert len(leaks) == 300 and min(sizes) >= 0.5 and max(sizes) <= 20.0
    assert 100 < sum(lk.kind == "abrupt" for lk in leaks) < 200
    assert len({lk.start.month for lk in leaks}) == 12


def test_synthetic_curve_headline(tmp_path: Path) -> None:
    """Issue 20's acceptance: ``akita eval --synthetic 300 --seed 1`` in CI.

    False alarms and the goal (abrupt leaks >= 5 m³/h found within 2 days >= 95 %) are
    asserted outright. Measured 58/60 = 97 % (docs/detectors.md, fourteenth session:
    the generator's noise as calibrated; 56/60 on the generator that ran 12 % noisier
    than the real days it was calibrated on); validation seeds 2-25: 1354/1367 = 99.0 %.
    """
    out = tmp_path / "curve.json"
    args = ["eval", "--synthetic", "300", "--seed", "1", "--json", str(out)]
    res = runner.invoke(akita_app, args)
    assert res.exit_code == 0, res.output
    curve = json.loads(out.read_text())["synthetic"]
    assert len(curve["leaks"]) == 300
    assert curve["false_alarms_per_month_leak_free"] <= 1.0
    found, of = curve["headline_abrupt_5plus_within_2d"]
    assert of >= 40
    assert found / of >= 0.95, f"abrupt >= 5 m3/h within 2 days: {found}/{of}, goal 95 %"
    lo, hi = curve["headline_95ci"]
    assert lo < found / of < hi
    # each miss is listed with the last alarm in its zone before it (found late or hidden)
    misses = [
        lk for lk in curve["leaks"]
        if lk["kind"] == "abrupt" and lk["size_m3h"] >= 5.0
        and (lk["found_at"] is None or datetime.fromisoformat(lk["found_at"])
             - datetime.fromisoformat(lk["start"]) > timedelta(days=2))
    ]  # fmt: skip
    assert len(misses) == of - found
    if misses:
        assert f"not found within 2 days ({len(misses)})" in res.output
    before = [lk["alarm_before_h"] for lk in curve["leaks"] if lk["alarm_before_h"] is not None]
    assert before and all(0.0 < h <= 72.0 for h in before)
    block_found, block_of = curve["headline_block_zone"]
    assert block_of < of and found > block_found  # the tank zone is watched (pump cycles)


def test_prior_alarm_is_the_last_one_in_the_leaks_zone_within_the_lookback() -> None:
    t0 = datetime(2030, 5, 10, 6, 0, tzinfo=UTC)
    block = Leak("p1", t0, t0 + timedelta(days=10), "abrupt", t0, 6.0, frozenset({"block"}))

    def alarm(hours_before: float, device: str = "block") -> Alarm:
        return Alarm(t0 - timedelta(hours=hours_before), device)

    assert synthetic.prior_alarm(block, []) is None
    # the nearest earlier alarm in the zone counts; later, other-zone and too-old ones do not
    alarms = [alarm(50), alarm(20), alarm(-3), alarm(2, "tank"), alarm(80)]
    assert synthetic.prior_alarm(block, alarms) == timedelta(hours=20)
    assert synthetic.prior_alarm(block, [alarm(80), alarm(-1)]) is None
    assert synthetic.prior_alarm(block, [alarm(0)]) is None  # raised at the start: its own
    assert synthetic.prior_alarm(block, [alarm(80)], timedelta(days=4)) == timedelta(hours=80)
    anywhere = dataclasses.replace(block, zones=frozenset())
    assert synthetic.prior_alarm(anywhere, [alarm(2, "tank")]) == timedelta(hours=2)


def test_wilson_interval_of_a_proportion() -> None:
    # textbook values (Newcombe 1998, table I): 81/263 -> 0.2553-0.3662
    lo, hi = synthetic.wilson(81, 263)
    assert lo == pytest.approx(0.2553, abs=5e-4) and hi == pytest.approx(0.3662, abs=5e-4)
    assert synthetic.wilson(60, 60)[1] == pytest.approx(1.0) and synthetic.wilson(60, 60)[0] < 0.95
    assert all(np.isnan(synthetic.wilson(0, 0)))
