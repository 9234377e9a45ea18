"""The gateway's log lines: key=value on stdout, for journald (which stamps the time)."""

from __future__ import annotations

import io
import logging

import pytest

from edge.logs import setup_logging


def test_one_key_value_line_per_event_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    setup_logging("info")
    setup_logging("info")  # a second call must not double each line
    log = logging.getLogger("edge.agent")
    log.warning("device_offline device=%s reason=%s failures=%d", "fm-01", "timeout", 3)
    log.debug("device_error device=fm-01")
    assert out.getvalue().splitlines() == [
        "level=WARNING logger=edge.agent device_offline device=fm-01 reason=timeout failures=3"
    ]


def test_pymodbus_timeouts_stay_out_of_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    setup_logging("info")
    logging.getLogger("pymodbus.logging").error("No response received after 3 retries")
    assert out.getvalue() == ""
