"""The console's chart field, open data's default public kinds and notify's alert
domains come from the kinds' declarations (Kind.headline, Kind.public, Kind.domain and
the detector parts' alert kinds), not from tables of their own. A plugin kind gets the
same treatment with no edit outside its folder (tests/kinds/test_dummy_kind.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloud.console.fields import chart_field
from cloud.detect.parts import parts
from cloud.notify.config import NotifyConfig
from cloud.notify.routing import Router
from cloud.opendata.settings import DEFAULT_PUBLIC_KINDS, OpendataSettings
from schemas.alert import Alert, Severity
from schemas.kinds import KINDS

NOW = datetime(2025, 7, 1, tzinfo=UTC)


def _alert(kind: str, device_id: str | None = None) -> Alert:
    return Alert(id="a1", kind=kind, severity=Severity.MODERATE, device_id=device_id,
                 title=kind, started_at=NOW, updated_at=NOW)  # fmt: skip


def _router(device_kinds: dict[str, str] | None = None, **config: Any) -> Router:
    known = device_kinds or {}
    return Router(NotifyConfig.model_validate(config), None,  # type: ignore[arg-type]
                  device_kind=known.get)  # fmt: skip


def test_console_charts_the_kinds_declared_headline() -> None:
    for name, kind in KINDS.items():
        if kind.headline is not None:
            assert chart_field(name, {}) is not None
            assert chart_field(name, {})[0] == kind.headline  # type: ignore[index]
    assert chart_field("water_block", {"field": "pressure"}) == ("pressure", "MPa")
    assert chart_field("no_such_kind", {}) is None  # an unknown kind charts nothing
    assert chart_field(None, {}) is None


def test_open_data_shows_by_default_exactly_the_kinds_declared_public() -> None:
    assert set(DEFAULT_PUBLIC_KINDS) == {n for n, k in KINDS.items() if k.public}
    assert "call_unit" not in DEFAULT_PUBLIC_KINDS and "flood_sensor" in DEFAULT_PUBLIC_KINDS
    assert set(OpendataSettings().public_kinds) == set(DEFAULT_PUBLIC_KINDS)


def test_an_alert_without_a_known_device_goes_to_its_detectors_kinds_domain() -> None:
    router = _router()
    checked = 0
    for part in parts().values():
        for alert_kind in part.alerts:
            assert router.domain(_alert(alert_kind)) == KINDS[part.kind].domain, alert_kind
            checked += 1
    assert checked >= 15
    assert router.domain(_alert("pump_fail_to_start")) == "sewer"
    assert router.domain(_alert("something_new")) == "ops"  # the default domain


def test_the_device_kind_and_explicit_kind_domains_come_first() -> None:
    router = _router({"cu-1": "call_unit"}, kind_domains={"leak": "leak-team"})
    assert router.domain(_alert("bad_value", "cu-1")) == "care"
    assert router.domain(_alert("leak", "cu-1")) == "leak-team"
