"""The step watch: a day against the days before it, confirmed by a night, beside the judges."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cloud.detect import leak, leak_step, synthetic, water
from cloud.detect.config import LeakConfig
from cloud.detect.leak import LeakTracker
from cloud.detect.leak_step import K_SIGMA, RawLevel, Step, StepWatch


def _level(values: list[float], floor_frac: float = 0.0) -> RawLevel:
    lvl = RawLevel(floor_frac, 0.1)
    for d, v in enumerate(values):
        lvl.add(d % 7, v)
    return lvl


def _noisy(n: int, base: float = 100.0, slope: float = 0.0, seed: int = 3) -> list[float]:
    rnd = random.Random(seed)
    return [base + slope * d + rnd.gauss(0.0, 0.5) for d in range(n)]


def test_a_day_is_measured_against_the_days_before_it() -> None:
    lvl = _level(_noisy(40))
    step = lvl.measure(40 % 7, 105.0)
    assert step is not None
    assert step.excess == pytest.approx(5.0, abs=1.0)
    assert step.z > K_SIGMA
    assert lvl.measure(40 % 7, 100.3).z < 2.0  # an ordinary day


def test_a_seasons_rise_is_followed_not_read_as_a_step() -> None:
    values = _noisy(40, slope=0.4)  # 0.4 a day: near the fastest season L-Town's has
    lvl = _level(values)
    step = lvl.measure(40 % 7, 100.0 + 0.4 * 40)
    assert step is not None and abs(step.z) < 2.0
    flat = _level(values[:30])
    assert flat.measure(30 % 7, 100.0 + 0.4 * 30).z < 2.0


def _repaired(leaks: bool) -> RawLevel:
    # flat days with a 15 m³/h leak on days 40-51, repaired 18 days before day 70
    lvl = RawLevel(0.0, 0.1)
    for d, v in enumerate(_noisy(70)):
        leak = 15.0 if 40 <= d < 52 else 0.0
        lvl.add(d % 7, v + leak, leak=leak if leaks else 0.0)
    return lvl


def test_a_leak_the_judges_held_does_not_tilt_the_season_after_its_repair() -> None:
    # the leak's days at the start of the slope's window and none at its end read as a
    # falling season (synthetic seed 16: -0.42 m³/h a day, a false 4.3 m³/h step 18 days
    # after a 16.7 m³/h leak's repair, which then hid a real 6.8 m³/h leak as its growth)
    tilted = _repaired(leaks=False).measure(70 % 7, 100.0)
    assert tilted is not None and tilted.slope < -0.3 and tilted.z > 3.0
    step = _repaired(leaks=True).measure(70 % 7, 100.0)
    assert step is not None
    assert abs(step.slope) < 0.1
    assert abs(step.z) < 2.0


def test_a_level_from_before_it_kept_leaks_restores_with_none() -> None:
    lvl = _repaired(leaks=True)
    state = lvl.__reduce_ex__(2)[2]
    assert isinstance(state, tuple) and "leaks" in state[1]
    old = RawLevel.__new__(RawLevel)
    old.__setstate__((None, {k: v for k, v in state[1].items() if k != "leaks"}))
    assert list(old.leaks) == [0.0] * len(old.periods)
    step = old.measure(70 % 7, 100.0)
    assert step is not None and step.slope < -0.3  # as before the upgrade
    old.add(70 % 7, 100.0, leak=0.0)
    assert len(old.leaks) == len(old.periods)


def test_too_few_days_measure_nothing() -> None:
    assert _level(_noisy(leak_step.MIN_PERIODS - 1)).measure(0, 200.0) is None


def _watch(days: int = 40) -> StepWatch:
    w = StepWatch(0.0, 0.0, 0.1)
    for d, (day, night) in enumerate(
        zip(_noisy(days), _noisy(days, base=50.0, seed=5), strict=True)
    ):
        w.add_night(d, d % 7, night)
        w.add_day(d, d % 7, day, judged=False)
    return w


def test_a_step_its_own_night_shows_is_raised_that_day() -> None:
    w = _watch()
    assert w.add_night(40, 40 % 7, 56.0) is None
    step, ended = w.add_day(40, 40 % 7, 106.0, judged=False)
    assert step is not None and step.excess == pytest.approx(6.0, abs=1.0)
    assert not ended and w.held is not None


def test_a_day_whose_nights_stay_put_is_demand() -> None:
    w = _watch()
    w.add_night(40, 40 % 7, 50.0)
    step, _ = w.add_day(40, 40 % 7, 106.0, judged=False)
    assert step is None and w.pending is not None  # its own night was before it: wait
    assert w.add_night(41, 41 % 7, 50.2) is None  # a warm day: the night stayed put
    assert w.held is None


def test_a_step_the_next_night_shows_is_raised_then() -> None:
    w = _watch()
    w.add_night(40, 40 % 7, 50.0)  # the leak started after this night
    assert w.add_day(40, 40 % 7, 104.0, judged=False)[0] is None
    step = w.add_night(41, 41 % 7, 56.0)
    assert step is not None and w.held is not None


def _up(level: RawLevel, day: int, z: float) -> float:
    """The value ``z`` of its own sigmas above what ``level`` expects on ``day``."""
    m = level.measure(day % 7, 100.0)
    assert m is not None
    return m.expected + z * m.sigma


def test_two_days_a_little_up_are_a_step_one_is_not() -> None:
    w = _watch()
    w.add_night(40, 40 % 7, _up(w.nights, 40, 1.5))
    assert w.add_day(40, 40 % 7, _up(w.days, 40, 3.0), judged=False)[0] is None
    w.add_night(41, 41 % 7, _up(w.nights, 41, 1.5))
    step, _ = w.add_day(41, 41 % 7, _up(w.days, 41, 3.2), judged=False)
    assert step is not None and step.z < K_SIGMA  # neither day alone would do
    w = _watch()
    w.add_night(40, 40 % 7, _up(w.nights, 40, 1.5))
    assert w.add_day(40, 40 % 7, _up(w.days, 40, 3.0), judged=False)[0] is None
    w.add_night(41, 41 % 7, _up(w.nights, 41, 0.0))
    assert w.add_day(41, 41 % 7, _up(w.days, 41, 0.0), judged=False)[0] is None


def test_a_day_and_a_night_each_a_little_up_are_a_step_together() -> None:
    w = _watch()
    w.add_night(40, 40 % 7, _up(w.nights, 40, 0.0))  # the leak started after this night
    day = w.days.measure(40 % 7, 100.0)
    assert day is not None
    assert w.add_day(40, 40 % 7, day.expected + 3.0 * day.sigma, judged=False)[0] is None
    night = w.nights.measure(41 % 7, 50.0)
    assert night is not None
    step = w.add_night(41, 41 % 7, night.expected + 3.0 * night.sigma)
    # neither alone is K_SIGMA up; their inverse-variance mean is
    assert step is not None and step.z > K_SIGMA and w.held is not None
    wd, wn = day.sigma**-2, night.sigma**-2
    size = (wd * 3.0 * day.sigma + wn * 3.0 * night.sigma) / (wd + wn)
    assert step.excess == pytest.approx(size)


def test_periods_together_need_each_a_little_up_and_a_night_among_them() -> None:
    def run(night_41: float, days_only: bool = False) -> Step | None:
        w = _watch()
        w.add_night(40, 40 % 7, _up(w.nights, 40, 0.0))
        w.add_day(40, 40 % 7, _up(w.days, 40, 3.0), judged=False)
        if not days_only:  # a night missing: the days alone (two-day rule) do not reach it
            assert w.add_night(41, 41 % 7, _up(w.nights, 41, night_41)) is None
        return w.add_day(41, 41 % 7, _up(w.days, 41, 2.4), judged=False)[0]

    assert run(2.0) is not None  # 3.0, 2.0 and 2.4 sigmas: together over 4
    assert run(0.5) is None  # a night that stays put: a warm spell, not a leak
    assert run(2.0, days_only=True) is None


def test_no_step_from_periods_together_while_a_leak_is_open() -> None:
    for held in (True, False):
        w = _watch()
        w.add_night(40, 40 % 7, _up(w.nights, 40, 0.0))
        w.add_day(40, 40 % 7, _up(w.days, 40, 3.0), judged=False)
        step = w.add_night(41, 41 % 7, _up(w.nights, 41, 3.0), held=held)
        assert (step is None) is held  # a growing leak is not another one


def test_a_judges_leak_on_the_same_day_is_not_raised_again() -> None:
    w = _watch()
    w.add_night(40, 40 % 7, 56.0)
    assert w.add_day(40, 40 % 7, 106.0, judged=True)[0] is None
    w = _watch()
    w.hand_over(39, 6.0)  # a judge raised 6 m³/h yesterday: the same leak
    w.add_night(40, 40 % 7, 56.0)
    assert w.add_day(40, 40 % 7, 106.0, judged=False)[0] is None


def test_the_same_step_is_one_alarm_and_a_larger_one_is_another() -> None:
    w = _watch()
    w.add_night(40, 40 % 7, 56.0)
    assert w.add_day(40, 40 % 7, 106.0, judged=False)[0] is not None
    w.add_night(41, 41 % 7, 56.0)
    assert w.add_day(41, 41 % 7, 106.2, judged=False)[0] is None  # the same leak
    w.add_night(42, 42 % 7, 70.0)
    assert w.add_day(42, 42 % 7, 120.0, judged=False)[0] is not None  # another one


def test_the_day_after_its_own_step_may_show_the_whole_leak() -> None:
    w = _watch()
    w.add_night(40, 40 % 7, 56.0)
    assert w.add_day(40, 40 % 7, 106.0, judged=False)[0] is not None
    w.add_night(41, 41 % 7, 62.0)
    # twice the step: its first day was partial, so this is the same leak...
    assert w.add_day(41, 41 % 7, 112.0, judged=False)[0] is None
    w = _watch()
    w.hand_over(40, 6.0)
    w.add_night(41, 41 % 7, 62.0)
    # ...but after a judge's leak (sized on a whole period) it is another one
    assert w.add_day(41, 41 % 7, 112.0, judged=False)[0] is not None


def test_a_held_step_ends_after_two_days_back_at_its_level() -> None:
    w = _watch()
    w.add_night(40, 40 % 7, 56.0)
    w.add_day(40, 40 % 7, 106.0, judged=False)
    assert w.add_day(41, 41 % 7, 100.1, judged=False)[1] is False
    assert w.add_day(42, 42 % 7, 99.8, judged=False)[1] is True
    assert w.held is None


def _block_flows(
    days: int, leak_day: int, size: float, seed: int = 11
) -> tuple[np.ndarray, np.ndarray, synthetic.Run]:
    """5-minute balance flows of the synthetic L-Town block, one block-zone leak."""
    start = datetime(2030, 3, 4, tzinfo=UTC)
    resp = synthetic.Response.load()
    pipe = next(i for i, s in enumerate(resp.shares) if s[2] < 0.01 and s[0] + s[1] > 0.99)
    t0 = start + timedelta(days=leak_day, hours=9)
    lk = synthetic.Leak(resp.links[pipe], t0, t0 + timedelta(days=6), "abrupt", t0, size)
    run = synthetic.Run(start, days, [synthetic.SynthLeak(lk, tuple(resp.shares[pipe]))])
    times, cols = synthetic.flows(run, synthetic.Calibration.load(), seed)
    t = np.array([ts.timestamp() for ts in times])
    return t, cols["p227"] + cols["p235"] - cols["PUMP_1"], run


def _events(tracker: LeakTracker, t: np.ndarray, flow: np.ndarray) -> list[tuple[float, str, str]]:
    out = []
    for ts, q in zip(t.tolist(), flow.tolist(), strict=True):
        v = tracker.add(ts, q)
        if v is not None and v.event is not None:
            out.append((ts, v.event, v.statistic or ""))
    return out


def test_the_watch_raises_and_clears_a_leak_the_judges_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # judges that never raise: whatever is raised is the watch's, with its own clear
    monkeypatch.setattr(leak, "DAY_CUSUM_H", 1e9)
    monkeypatch.setattr(leak, "DAY_K_STEP", 1e9)
    cfg = LeakConfig(utc_offset_h=0, cusum_h=1e9, k_step=1e9, young_rise_frac=1e9)
    t, flow, run = _block_flows(70, 56, 9.0)
    events = _events(LeakTracker(cfg), t, flow)
    start = run.leaks[0].leak.start.timestamp()
    assert [(e, s) for _, e, s in events] == [("onset", "day_step"), ("clear", "day_step")]
    assert 0.0 < events[0][0] - start <= 2 * 86400.0
    assert events[1][0] > run.leaks[0].leak.end.timestamp()


def test_one_leak_is_one_alarm_with_judges_and_watch_together() -> None:
    t, flow, run = _block_flows(70, 56, 9.0)
    events = _events(LeakTracker(LeakConfig(utc_offset_h=0)), t, flow)
    start = run.leaks[0].leak.start.timestamp()
    alarms = [ts for ts, e, _ in events if e in ("onset", "step") and ts >= start]
    assert len(alarms) == 1 and alarms[0] - start <= 2 * 86400.0
    assert not [ts for ts, e, _ in events if e in ("onset", "step") and ts < start]


def test_a_step_of_days_and_nights_together_says_so_in_the_alert() -> None:
    tracker = LeakTracker(LeakConfig(utc_offset_h=0))
    for periods, statistic in ((1, "day_step"), (3, "days_nights_step")):
        step = Step(160.6, 156.5, 8.2, 1.5, 150.0, 0.0, 1.0, periods)
        v = tracker._watch_alarm(step, (0.0, False), t=0.0)
        assert v.event == "onset" and v.statistic == statistic
    msg = water._leak_message(v, statistic)
    # the estimate pools the periods, so the day's flow alone does not give it
    assert msg.startswith("days and nights together") and "estimated leak 8.2 m³/h" in msg


def test_a_checkpoint_from_before_the_watch_restores_with_one() -> None:
    t, flow, _ = _block_flows(40, 39, 0.0)
    tracker = LeakTracker(LeakConfig(utc_offset_h=0))
    _events(tracker, t, flow)
    state = tracker.__reduce_ex__(2)[2]
    assert isinstance(state, tuple) and "watch" in state[1]
    old = (None, {k: v for k, v in state[1].items() if k != "watch"})
    restored = LeakTracker.__new__(LeakTracker)
    restored.__setstate__(old)
    assert isinstance(restored.watch, StepWatch)
    again = pickle.loads(pickle.dumps(tracker))
    assert len(again.watch.days.periods) == len(tracker.watch.days.periods) > 30
    # a watch from before it kept its recent periods starts them afresh
    watch = tracker.watch.__reduce_ex__(2)[2]
    older = StepWatch.__new__(StepWatch)
    older.__setstate__((None, {k: v for k, v in watch[1].items() if k != "recent"}))
    assert not older.recent and older.add_night(40, 40 % 7, 50.0) is None
