from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from akita.cli import app as akita_app
from cloud.detect import battledim
from cloud.detect.base import Detection
from cloud.detect.config import DetectConfig
from cloud.detect.dataset import DatasetError, load_export
from cloud.detect.scoring import replay, score
from tests.cloud.detect.synth import mixed, water

FIXTURE = Path(__file__).parents[2] / "fixtures" / "battledim_synthetic"
runner = CliRunner()


def test_eval_data_scores_every_labelled_kind(tmp_path: Path) -> None:
    path = mixed(tmp_path / "mixed.csv")
    out_json = tmp_path / "figures.json"
    res = runner.invoke(akita_app, ["eval", "--data", str(path), "--json", str(out_json)])
    assert res.exit_code == 0, res.output
    assert "flood_stage" in res.output and "button_press" in res.output
    figures = json.loads(out_json.read_text())["mixed"]
    labelled = {
        "flood_stage": 5,
        "button_press": 1,
        "heat_wbgt": 2,
        "pump_fail_to_start": 1,
        "pump_short_cycle": 1,
        "vehicle_stale": 1,
        "off_route": 1,
        "device_offline": 2,  # one device outage, one gateway outage
    }
    for kind, n in labelled.items():
        f = figures[kind]
        assert (f["labels"], f["recall"], f["precision"]) == (n, 1.0, 1.0), kind
    assert figures["button_press"]["p95_delay_samples"] == 0.0
    assert figures["flood_rising"]["scored"] is False


def test_water_export_leak_within_three_nights_and_burst_within_two_samples(
    tmp_path: Path,
) -> None:
    export = load_export(water(tmp_path / "water.csv"))
    # a 12-day export: the learned model after 7 nights (the default waits 21)
    cfg = DetectConfig.model_validate({"water": {"leak": {"learn_nights": 7}}})
    scores = score(export, replay(export, cfg))
    assert scores["leak"].recall == 1.0 and scores["leak"].precision == 1.0
    assert max(scores["leak"].delays_s) <= 3 * 86400
    assert scores["burst"].recall == 1.0 and max(scores["burst"].delays_samples) <= 2
    assert scores["stuck_sensor"].recall == 1.0
    assert all(ks.goal_met() is not False for ks in scores.values())


def test_scoring_counts_false_alarms_and_misses(tmp_path: Path) -> None:
    export = load_export(mixed(tmp_path / "mixed.csv"))
    fake = Detection("t", "button_press", "c1", datetime(2026, 7, 1, 7, tzinfo=UTC), True)
    scores = score(export, [fake])
    bp = scores["button_press"]
    assert (bp.labels, bp.detected, bp.onsets, bp.false_alarms) == (1, 0, 1, 1)
    assert bp.precision == 0.0 and bp.missed and bp.goal_met() is False
    assert scores["flood_stage"].recall == 0.0


def test_bad_export_is_named(tmp_path: Path) -> None:
    path = mixed(tmp_path / "mixed.csv")
    lines = path.read_text().splitlines()
    lines.insert(3, "2026-07-01T00:00:00.000Z,f1,flood_sensor,dept,1.0")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"mixed.csv:4: unknown field 'dept'"):
        load_export(path)
    res = runner.invoke(akita_app, ["eval", "--data", str(tmp_path / "nope.csv")])
    assert res.exit_code != 0 and "not found" in res.output


def test_unknown_scenario_fails_clearly(tmp_path: Path) -> None:
    # options after the scenario names are options, not more scenario names
    res = runner.invoke(
        akita_app, ["eval", "no_such_scenario", "--seed", "3", "--out-dir", str(tmp_path)]
    )
    assert res.exit_code != 0
    assert "no_such_scenario" in res.output and "'--seed'" not in res.output


def test_battledim_replay_on_synthetic_fixture() -> None:
    res = battledim.run(FIXTURE)
    by_id = {m.leak.link_id: m for m in res.onset.leaks}
    assert by_id["s1"].goal_met and by_id["s1"].delay is not None
    assert by_id["s1"].delay.total_seconds() <= 2 * 86400
    assert by_id["s2"].goal_met and by_id["s2"].found_at <= by_id["s2"].leak.peak
    assert res.onset.false_positives == 0 and res.battledim.false_positives == 0
    assert res.onset.months > 1


def test_battledim_cli_prints_both_rules_per_leak_and_writes_json(tmp_path: Path) -> None:
    out_json = tmp_path / "bd.json"
    res = runner.invoke(akita_app, ["eval", "--battledim", str(FIXTURE), "--json", str(out_json)])
    assert res.exit_code == 0, res.output
    assert "onset rule: true positives 2" in res.output
    assert "battledim rule: true positives 2" in res.output
    assert "abrupt within 2 days 1/1 · incipient before peak 1/1" in res.output
    figures = json.loads(out_json.read_text())["battledim"]
    assert figures["battledim_rule"]["false_positives_per_month"] == 0.0
    assert [x["link_id"] for x in figures["onset_rule"]["leaks"]] == ["s1", "s2"]


def test_battledim_cli_score_from_carries_earlier_leaks(tmp_path: Path) -> None:
    res = runner.invoke(
        akita_app, ["eval", "--battledim", str(FIXTURE), "--score-from", "2030-01-28"]
    )
    assert res.exit_code == 0, res.output
    assert "carried over, not scored" in res.output  # s1 started on the 23rd
    bad = runner.invoke(akita_app, ["eval", "--battledim", str(FIXTURE), "--score-from", "soon"])
    assert bad.exit_code != 0 and "--score-from 'soon'" in bad.output
