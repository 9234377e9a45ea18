"""Leak scoring rules on hand-made alarm/leak timelines (no detector involved)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.detect import battledim
from cloud.detect.dataset import DatasetError
from cloud.detect.leak_scoring import Alarm, Leak, both_rules


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def leak(name: str, start: str, end: str, kind: str = "abrupt", peak: str | None = None) -> Leak:
    return Leak(name, t(start), t(end), kind, t(peak or start))


START, END = t("2030-01-01"), t("2030-03-01")


def verdicts(alarms: list[str], leaks: list[Leak], start: datetime = START) -> tuple:
    onset, bd = both_rules([Alarm(t(a)) for a in alarms], leaks, start, END)
    return onset, bd, [v for _, v in onset.verdicts], [v for _, v in bd.verdicts]


def test_alarm_goes_to_the_leak_whose_onset_it_follows_not_the_most_recent() -> None:
    a = leak("a", "2030-01-10 02:00", "2030-01-30")
    b = leak("b", "2030-01-11 02:00", "2030-01-30")
    onset, bd, _, _ = verdicts(["2030-01-11 06:00", "2030-01-12 06:00"], [a, b])
    assert [m.found_at for m in onset.leaks] == [t("2030-01-11 06:00"), t("2030-01-12 06:00")]
    assert [m.found_at for m in bd.leaks] == [t("2030-01-11 06:00"), t("2030-01-12 06:00")]


def test_alarm_after_the_onset_window_is_false_under_onset_rule_but_true_for_battledim() -> None:
    a = leak("a", "2030-01-10 02:00", "2030-02-20")
    onset, bd, on_v, bd_v = verdicts(["2030-02-05 06:00"], [a])  # 26 days after its start
    assert on_v == ["false"] and onset.false_positives == 1 and onset.leaks[0].found_at is None
    assert bd_v == ["credited"] and bd.true_positives == 1 and not bd.leaks[0].goal_met


def test_alarm_hours_before_a_start_is_false_and_not_credited_to_an_older_leak() -> None:
    old = leak("old", "2030-01-01 03:00", "2030-02-28")  # found long ago
    new = leak("new", "2030-01-20 10:00", "2030-01-30")
    alarms = ["2030-01-02 06:00", "2030-01-20 06:00", "2030-01-21 06:00"]
    onset, _, on_v, bd_v = verdicts(alarms, [old, new])
    assert on_v == ["credited", "false", "credited"]  # 4 h early: outside every window
    assert bd_v == ["credited", "repeat", "credited"]  # old is still running: a repeat
    assert onset.leaks[1].found_at == t("2030-01-21 06:00") and onset.leaks[1].goal_met


def test_repeats_are_counted_apart_and_in_the_strict_rate() -> None:
    a = leak("a", "2030-01-10 02:00", "2030-01-30")
    onset, _, on_v, _ = verdicts(["2030-01-10 06:00", "2030-01-11 06:00"], [a])
    assert on_v == ["credited", "repeat"]
    assert onset.true_positives == 1 and onset.repeats == 1 and onset.false_positives == 0
    assert onset.per_month(onset.false_positives + onset.repeats) > 0


def test_false_alarms_are_counted_when_no_leak_runs() -> None:
    a = leak("a", "2030-01-10 02:00", "2030-01-12")
    onset, bd, on_v, bd_v = verdicts(["2030-01-05 06:00", "2030-01-20 06:00"], [a])
    assert on_v == bd_v == ["false", "false"]
    assert onset.false_positives == bd.false_positives == 2
    assert onset.per_month(2) == pytest.approx(2 / onset.months)


def test_incipient_leak_takes_alarms_until_after_its_peak_but_abrupt_goes_first() -> None:
    slow = leak("slow", "2030-01-01 03:00", "2030-02-28", "incipient", "2030-02-10")
    step = leak("step", "2030-01-20 02:00", "2030-01-25")
    onset, _, on_v, _ = verdicts(["2030-01-20 06:00", "2030-02-05 06:00"], [slow, step])
    assert on_v == ["credited", "credited"]
    found = {m.leak.link_id: m for m in onset.leaks}
    assert found["step"].found_at == t("2030-01-20 06:00") and found["step"].goal_met
    assert found["slow"].found_at == t("2030-02-05 06:00") and found["slow"].goal_met


def test_leaks_running_before_the_scored_period_are_carried_not_scored() -> None:
    early = leak("early", "2029-12-20", "2030-01-15")
    gone = leak("gone", "2029-11-01", "2029-11-20")  # repaired before the period
    fresh = leak("fresh", "2030-01-20 02:00", "2030-01-30")
    onset, bd, _, bd_v = verdicts(
        ["2030-01-02 06:00", "2030-01-20 06:00"], [early, gone, fresh], start=START
    )
    assert [m.leak.link_id for m in onset.leaks] == ["early", "fresh"]
    assert onset.leaks[0].carried and not onset.leaks[1].carried
    assert bd_v == ["carried", "credited"]  # neither true nor false
    assert bd.true_positives == 1 and bd.false_positives == 0
    assert [m.leak.link_id for m in bd.scored] == ["fresh"] and bd.goal("abrupt") == (1, 1)


def test_an_alarm_goes_only_to_a_leak_in_its_zone_under_the_onset_rule() -> None:
    block = Leak("p183", t("2030-01-10 02:00"), t("2030-01-20"), "abrupt", t("2030-01-10 02:00"),
                 zones=frozenset({battledim.BLOCK_ID}))  # fmt: skip
    tank = Leak("p31", t("2030-01-11 02:00"), t("2030-01-20"), "abrupt", t("2030-01-11 02:00"),
                zones=frozenset({battledim.TANK_ID}))  # fmt: skip
    alarms = [
        Alarm(t("2030-01-10 12:00"), battledim.TANK_ID),  # the tank's noise, in the block's leak
        Alarm(t("2030-01-11 05:00"), battledim.BLOCK_ID),
        Alarm(t("2030-01-11 06:00"), battledim.TANK_ID),
    ]
    onset, bd = both_rules(alarms, [block, tank], START, END)
    assert [v for _, v in onset.verdicts] == ["false", "credited", "credited"]
    assert [m.found_at for m in onset.leaks] == [t("2030-01-11 05:00"), t("2030-01-11 06:00")]
    # BattLeDIM's rule is time alone: the tank's alarm takes the block's leak
    assert [v for _, v in bd.verdicts] == ["credited", "credited", "repeat"]
    assert [m.found_at for m in bd.leaks] == [t("2030-01-10 12:00"), t("2030-01-11 05:00")]


def test_l_town_leaks_get_the_zone_their_pipe_feeds_when_both_zones_are_watched() -> None:
    leaks = [leak("p183", "2030-01-10", "2030-01-20"), leak("p31", "2030-01-10", "2030-01-20"),
             leak("no-such-pipe", "2030-01-10", "2030-01-20")]  # fmt: skip
    both = battledim.with_zones(leaks, [battledim.BLOCK_ID, battledim.TANK_ID])
    assert [lk.zones for lk in both] == [
        frozenset({battledim.BLOCK_ID}),
        frozenset({battledim.TANK_ID}),
        frozenset(),
    ]
    assert both[2].seen_by("anything")
    # no pump column: the block's balance sees every leak, so none is given a zone
    assert battledim.with_zones(leaks, [battledim.BLOCK_ID]) == leaks


def _write_year(d: Path, year: int, leak_year: int) -> None:
    d.mkdir()
    rows = ["Timestamp,p227,p235,PUMP_1"] + [
        f"{year}-01-0{1 + i // 288} {(i % 288) // 12:02d}:{(i % 12) * 5:02d}:00,60,50,0"
        for i in range(288 * 3)
    ]
    (d / f"{year}_SCADA_Flows.csv").write_text("\n".join(rows) + "\n")
    (d / f"leaks_{leak_year}.csv").write_text(
        "link_id,start_time,end_time,leak_diameter_m,leak_type,peak_time\n"
        f"p1,{leak_year}-01-02 03:00,{leak_year}-01-03 00:00,0.02,abrupt,{leak_year}-01-02 03:00\n"
    )


def test_year_mismatch_is_refused_with_both_names(tmp_path: Path) -> None:
    _write_year(tmp_path / "y", 2030, 2031)
    with pytest.raises(DatasetError, match=r"2030_SCADA_Flows\.csv is year 2030.*leaks_2031"):
        battledim.run(tmp_path / "y")


def test_non_overlapping_labels_are_refused(tmp_path: Path) -> None:
    _write_year(tmp_path / "y", 2030, 2031)
    (tmp_path / "y" / "leaks_2031.csv").rename(tmp_path / "y" / "leaks.csv")
    with pytest.raises(
        DatasetError, match=r"leaks\.csv \(2031-01-02 to 2031-01-03\) do not overlap"
    ):
        battledim.run(tmp_path / "y")


def test_continuous_years_must_come_in_time_order(tmp_path: Path) -> None:
    _write_year(tmp_path / "a", 2030, 2030)
    _write_year(tmp_path / "b", 2031, 2031)
    res = battledim.run([tmp_path / "a", tmp_path / "b"])
    assert [m.leak.start.year for m in res.onset.leaks] == [2030, 2031]
    assert res.start.year == 2030 and res.end.year == 2031
    with pytest.raises(DatasetError, match="not after the previous file's end"):
        battledim.run([tmp_path / "b", tmp_path / "a"])


def test_a_naive_scoring_bound_is_read_on_the_scada_clock(tmp_path: Path) -> None:
    _write_year(tmp_path / "a", 2030, 2030)
    naive = battledim.run(tmp_path / "a", score_from=datetime(2030, 1, 2))
    assert naive.start == t("2030-01-02")
    assert (
        naive.onset.leaks == battledim.run(tmp_path / "a", score_from=t("2030-01-02")).onset.leaks
    )
