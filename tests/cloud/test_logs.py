"""The cloud's log lines: one event per line, key=value, whichever process wrote it."""

from __future__ import annotations

import io
import logging
import re

import pytest

from cloud.logs import setup_logging

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} level=(\w+) logger=(\S+) (.*)$")


def test_one_key_value_line_per_event_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    setup_logging("info")
    setup_logging("info")  # a second process entry point must not double each line
    logging.getLogger("cloud.ingest.worker").info("batch_written points=%d", 12)
    logging.getLogger("cloud.ingest.worker").debug("not_shown")
    lines = err.getvalue().splitlines()
    assert len(lines) == 1, lines
    m = LINE.match(lines[0])
    assert m is not None, lines[0]
    assert m.groups() == ("INFO", "cloud.ingest.worker", "batch_written points=12")


def test_uvicorn_access_lines_take_the_same_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    logging.getLogger("uvicorn.access").addHandler(logging.StreamHandler(io.StringIO()))
    setup_logging("warning")
    logging.getLogger("uvicorn.access").warning('127.0.0.1 "GET /api/v1/alerts" 500')
    m = LINE.match(err.getvalue().strip())
    assert m is not None and m.group(1, 2) == ("WARNING", "uvicorn.access"), err.getvalue()
