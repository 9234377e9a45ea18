"""Report strategies: on change (per-register deadband), period, on change or period."""

from __future__ import annotations

from typing import Any

from edge.agent import _DeviceState
from edge.config import Device


def state(report: str, **kw: Any) -> _DeviceState:
    return _DeviceState(
        Device(
            id="wb-1",
            kind="water_block",
            driver="modbus_tcp",
            host="h",
            port=502,
            unit_id=1,
            poll_interval_s=1.0,
            report=report,
            report_period_s=10.0,
            registers=[
                {"field": "flow", "address": 0, "deadband": 0.5},
                {"field": "pressure", "address": 1},
            ],
            **kw,
        )
    )


def test_on_change_uses_the_deadband_of_each_register() -> None:
    st = state("on_change")
    assert st.select({"flow": 10.0, "pressure": 0.3}, 0) == {"flow": 10.0, "pressure": 0.3}
    assert st.select({"flow": 10.4, "pressure": 0.3}, 1) is None  # inside the deadband
    assert st.select({"flow": 10.6, "pressure": 0.3}, 2) == {"flow": 10.6}
    assert st.select({"flow": 10.6, "pressure": 0.31}, 3) == {"pressure": 0.31}
    assert st.select({"flow": 10.6, "pressure": 0.31}, 60) is None  # never periodic


def test_period_reports_everything_once_per_period() -> None:
    st = state("period")
    sent = [t for t in range(0, 31) if st.select({"flow": 1.0, "pressure": 0.3}, t)]
    assert sent == [0, 10, 20, 30]


def test_on_change_or_period() -> None:
    st = state("on_change_or_period")
    assert st.select({"flow": 1.0, "pressure": 0.3}, 0) == {"flow": 1.0, "pressure": 0.3}
    assert st.select({"flow": 1.0, "pressure": 0.3}, 5) is None
    assert st.select({"flow": 2.0, "pressure": 0.3}, 6) == {"flow": 2.0}
    assert st.select({"flow": 2.0, "pressure": 0.3}, 10) == {"flow": 2.0, "pressure": 0.3}
