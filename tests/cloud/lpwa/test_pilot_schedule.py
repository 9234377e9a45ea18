"""The scheduled pilot report: ``akita pilot report --days N`` (the N whole days up to the
last midnight in the city's zone, from an injected "now") and the shipped
deploy/systemd/akita-pilot-report.service and .timer that run it daily."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from akita.cli import app, build_app
from cloud.errors import CloudError
from cloud.pilot import cli as pilot_cli
from cloud.pilot.cli import last_days, period
from cloud.pilot.report import period_hours
from tests.docs.examples import parse_only
from tests.servers import require_binary
from tests.systemd_units import unit_section

JST = timezone(timedelta(hours=9))
DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "systemd"
SERVICE = DEPLOY / "akita-pilot-report.service"
TIMER = DEPLOY / "akita-pilot-report.timer"


def test_days_end_at_the_last_midnight_in_tokyo() -> None:
    # 2026-06-10 08:00 JST (23:00 UTC the day before): the last midnight is 06-10 00:00 JST
    start, end = last_days(7, "Asia/Tokyo", datetime(2026, 6, 9, 23, 0, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 6, 3, tzinfo=JST), datetime(2026, 6, 10, tzinfo=JST))
    assert (start.isoformat(), end.isoformat()) == (
        "2026-06-03T00:00:00+09:00",
        "2026-06-10T00:00:00+09:00",
    )
    assert period_hours(start, end) == 7 * 24
    # 14:59 UTC is 23:59 JST the same day; 15:00 UTC is the next JST midnight itself
    assert last_days(1, "Asia/Tokyo", datetime(2026, 6, 10, 14, 59, tzinfo=UTC))[1] == end
    at_midnight = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)
    assert last_days(1, "Asia/Tokyo", at_midnight) == (end, at_midnight)


def test_the_timer_s_run_gets_the_thirty_days_before_today() -> None:
    # the timer fires at 01:30 JST = 16:30 UTC the day before
    start, end = last_days(30, "Asia/Tokyo", datetime(2026, 12, 6, 16, 30, tzinfo=UTC))
    assert start == datetime(2026, 11, 7, tzinfo=JST)
    assert end == datetime(2026, 12, 7, tzinfo=JST)
    assert period_hours(start, end) == 720


def test_a_dst_change_in_the_period_counts_its_real_hours() -> None:
    # Europe/Berlin springs forward on 2026-03-29: 30 days up to April 10 are 719 h
    start, end = last_days(30, "Europe/Berlin", datetime(2026, 4, 10, 12, tzinfo=UTC))
    assert (start.isoformat(), end.isoformat()) == (
        "2026-03-11T00:00:00+01:00",
        "2026-04-10T00:00:00+02:00",
    )
    assert period_hours(start, end) == 719


def test_a_zone_whose_midnight_is_off_the_hour_is_refused() -> None:
    with pytest.raises(ValueError) as exc:
        last_days(7, "Asia/Kolkata", datetime(2026, 6, 10, tzinfo=UTC))
    assert str(exc.value) == (
        "--days 7: midnight in Asia/Kolkata (2026-06-03T00:00:00+05:30) is not on the hour "
        "in UTC and readings are hourly: give --from and --to"
    )


@pytest.mark.parametrize(
    ("days", "zone", "message"),
    [
        (0, "Asia/Tokyo", "--days 0: give 1 to 366 whole days"),
        (367, "Asia/Tokyo", "--days 367: give 1 to 366 whole days"),
        (7, "Asia/Tokio", "setting commands.timezone 'Asia/Tokio' is not a time zone"),
        (7, "", "setting commands.timezone '' is not a time zone"),
        (7, "../etc/passwd", "setting commands.timezone '../etc/passwd' is not a time zone"),
    ],
)
def test_bad_days_or_zone_named(days: int, zone: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        last_days(days, zone, datetime(2026, 6, 10, tzinfo=UTC))
    assert str(exc.value).startswith(message), exc.value


NOW = datetime(2026, 6, 10, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "days", "message"),
    [
        ("2026-06-01T00:00+09:00", None, 7, "--days cannot be combined with --from/--to"),
        (None, "2026-06-08T00:00+09:00", 7, "--days cannot be combined with --from/--to"),
        (None, None, None, "give the period: --days N (the N days up to the last midnight) "
                           "or --from and --to"),
        ("2026-06-01T00:00+09:00", None, None, "--from needs --to: give both, or --days N"),
        (None, "2026-06-08T00:00+09:00", None, "--to needs --from: give both, or --days N"),
        ("June 1", "2026-06-08T00:00+09:00", None, "--from 'June 1' is not an ISO 8601 time"),
        ("2026-06-01T00:30+09:00", "2026-06-08T00:00+09:00", None,
         "--from 2026-06-01T00:30:00+09:00 / --to 2026-06-08T00:00:00+09:00: the period must "
         "start on the hour"),
    ],
)  # fmt: skip
def test_period_options_mixed_missing_or_wrong_are_named(
    start: str | None, end: str | None, days: int | None, message: str
) -> None:
    with pytest.raises(ValueError) as exc:
        period(start, end, days, "Asia/Tokyo", NOW)
    assert str(exc.value).startswith(message), exc.value


def test_period_from_to_as_given_or_days_from_now() -> None:
    given = period("2026-06-01T00:00+09:00", "2026-06-08T00:00+09:00", None, "Asia/Tokyo", NOW)
    assert given == (datetime(2026, 6, 1, tzinfo=JST), datetime(2026, 6, 8, tzinfo=JST))
    # 03:00 UTC is 12:00 JST on June 10
    assert period(None, None, 3, "Asia/Tokyo", NOW) == (
        datetime(2026, 6, 7, tzinfo=JST),
        datetime(2026, 6, 10, tzinfo=JST),
    )
    assert period(None, None, 1, "UTC", NOW) == (
        datetime(2026, 6, 9, tzinfo=UTC),
        datetime(2026, 6, 10, tzinfo=UTC),
    )


def test_the_command_reports_the_days_in_the_settings_zone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the command's wiring: the settings' zone, the clock, the period handed to the build
    import cloud.pilot.report as report_mod

    seen: dict[str, Any] = {}

    def leak_alerts(sm: object, t0: datetime, t1: datetime) -> dict[str, int]:
        seen["alerts"] = (t0, t1)
        return {}

    def build(store: object, devices: object, leaks: object, t0: datetime, t1: datetime) -> Any:
        seen["build"] = (t0, t1)
        raise CloudError("stop here")

    monkeypatch.setattr(pilot_cli, "_now", lambda: datetime(2026, 6, 10, 16, 30, tzinfo=UTC))
    monkeypatch.setattr(pilot_cli, "_open_settings", lambda s: (None, None, {}))
    monkeypatch.setattr(report_mod, "leak_alerts", leak_alerts)
    monkeypatch.setattr(report_mod, "build", build)
    config = tmp_path / "cloud.toml"
    config.write_text('environment = "development"\n[commands]\ntimezone = "UTC"\n')
    result = CliRunner().invoke(app, ["pilot", "report", "--days", "2", "--config", str(config)])
    assert result.exit_code == 2 and "stop here" in result.output, result.output
    utc = (datetime(2026, 6, 8, tzinfo=UTC), datetime(2026, 6, 10, tzinfo=UTC))
    assert seen == {"alerts": utc, "build": utc}

    config.write_text('environment = "development"\n')  # commands.timezone: Asia/Tokyo
    seen.clear()
    result = CliRunner().invoke(app, ["pilot", "report", "--days", "2", "--config", str(config)])
    jst = (datetime(2026, 6, 9, tzinfo=JST), datetime(2026, 6, 11, tzinfo=JST))
    assert seen == {"alerts": jst, "build": jst}, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "30", "--from", "2026-06-01T00:00+09:00"], "--days cannot be combined"),
        ([], "give the period: --days N"),
        (["--to", "2026-06-08T00:00+09:00"], "--to needs --from"),
    ],
)
def test_the_command_names_the_options_before_reading_settings(
    args: list[str], message: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such.toml"  # not read: the options are wrong first
    result = CliRunner().invoke(
        app, ["pilot", "report", *args, "--config", str(missing)], terminal_width=200
    )
    assert result.exit_code == 2
    assert message in result.output and "no-such.toml" not in result.output, result.output


EXEC = (
    "/opt/akita/venv/bin/akita pilot report --days 30 --store-figures "
    "--config /etc/akita/cloud.toml --out /var/lib/akita/pilot"
)


def test_the_report_unit_is_a_oneshot_as_sandboxed_as_the_detect_unit() -> None:
    report, detect = _service_section(SERVICE), _service_section(DEPLOY / "akita-detect.service")
    assert report["Type"] == ["oneshot"]
    assert report["ExecStart"] == [EXEC]
    assert "Restart" not in report  # the timer runs it again tomorrow
    for key in ("User", "Group", "UMask", "StateDirectory", "StateDirectoryMode",
                "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
                "PrivateDevices", "ProtectProc", "ReadWritePaths", "RestrictAddressFamilies",
                "CapabilityBoundingSet", "AmbientCapabilities", "SystemCallFilter"):  # fmt: skip
        assert report[key] == detect[key], key
    assert report["ReadWritePaths"] == ["/var/lib/akita"] and report["UMask"] == ["0077"]
    # its output directory is inside the only writable path
    assert Path("/var/lib/akita/pilot").is_relative_to(report["ReadWritePaths"][0])


def _service_section(unit: Path) -> dict[str, list[str]]:
    return unit_section(unit, "Service")


def test_the_unit_s_command_parses_as_the_cli_does() -> None:
    args = EXEC.split()[1:]
    parse_only(typer.main.get_command(build_app()), args)
    with pytest.raises(Exception, match="No such option"):
        parse_only(typer.main.get_command(build_app()), [*args, "--dayz", "3"])


def test_the_timer_starts_the_report_daily_after_tokyo_midnight_and_catches_up() -> None:
    timer = unit_section(TIMER, "Timer")
    assert timer["OnCalendar"] == ["*-*-* 01:30 Asia/Tokyo"]
    assert timer["Persistent"] == ["true"]
    assert timer["Unit"] == [SERVICE.name]
    assert unit_section(TIMER, "Install")["WantedBy"] == ["timers.target"]


def test_systemd_reads_the_timer_s_calendar_as_1630_utc() -> None:
    # fails under CI when missing (scripts/test.sh installs Debian's systemd), skips locally
    analyze = require_binary("systemd-analyze", "systemd")
    (calendar,) = unit_section(TIMER, "Timer")["OnCalendar"]
    r = subprocess.run(
        [analyze, "calendar", "--iterations=2", "--base-time=2026-06-01 00:00:00 UTC", calendar],
        capture_output=True, text=True, timeout=60, env={**os.environ, "TZ": "UTC"},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    elapses = re.findall(r"(?:Next elapse|Iter\. #2): \w+ (\S+ \S+) UTC", r.stdout)
    assert elapses == ["2026-06-01 16:30:00", "2026-06-02 16:30:00"], r.stdout


def test_systemd_analyze_verify_the_report_units(tmp_path: Path) -> None:
    # fails under CI when missing (scripts/test.sh installs Debian's systemd), skips locally
    analyze = require_binary("systemd-analyze", "systemd")
    akita = Path(sys.executable).with_name("akita")
    for unit in (SERVICE, TIMER):
        text = unit.read_text(encoding="utf-8").replace("/opt/akita/venv/bin/akita", str(akita))
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    r = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / TIMER.name), str(tmp_path / SERVICE.name)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    problems = [line for line in (r.stdout + r.stderr).splitlines() if "akita-pilot" in line]
    assert r.returncode == 0 and problems == [], r.stdout + r.stderr
