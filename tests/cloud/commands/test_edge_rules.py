"""The local flood rule the cloud derives for a sign's gateway, and rules whose params a
gateway would reject refused when the settings load."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cloud.commands.config import CommandSettings
from cloud.commands.edge_rules import edge_flood_rules
from cloud.detect.config import FloodConfig


def _rule(rule_id: str, stage: str, action: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": rule_id, "type": "device_action", "alert_kind": "flood_stage", "min_stage": stage,
        "source": kw.pop("source", "fs-1"), "target": "sign-1", "action": action,
        "params": {"value": True}, "off_params": {"value": False}, **kw,
    }  # fmt: skip


def _settings(*rules: dict[str, Any]) -> CommandSettings:
    return CommandSettings.model_validate({"rules": list(rules)})


def test_stages_come_from_the_site_and_the_version_follows_them() -> None:
    rules = _settings(_rule("l", "warning", "lamp"), _rule("s", "danger", "siren"))
    site = {"fs-1": {"stages_cm": [15, 25, 40]}}
    got = edge_flood_rules(rules, FloodConfig(hysteresis_cm=3), site)["sign-1"]
    assert (got.sensor, got.lamp_on_cm, got.siren_on_cm, got.off_below_cm) == (
        "fs-1", 25, 40, 12)  # fmt: skip
    again = edge_flood_rules(rules, FloodConfig(hysteresis_cm=3), site)["sign-1"]
    other = edge_flood_rules(rules, FloodConfig(hysteresis_cm=3), {})["sign-1"]
    assert again.digest == got.digest != other.digest  # the content, not the version


def test_rules_a_gateway_cannot_run_alone_are_left_out_or_refused() -> None:
    anywhere = _rule("l", "warning", "lamp", source=None)
    pattern = _rule("p", "warning", "lamp_pattern", params={"value": 2}, off_params=None)
    assert edge_flood_rules(_settings(anywhere, pattern), FloodConfig(), {}) == {}
    two = _settings(_rule("l", "warning", "lamp"), _rule("s", "danger", "siren", source="fs-2"))
    with pytest.raises(ValueError, match=r"already follows 'fs-1'.*'fs-2'"):
        edge_flood_rules(two, FloodConfig(), {})


@pytest.mark.parametrize(
    ("field", "params"), [("params", {"on": True}), ("off_params", {"value": False, "x": 1})]
)
def test_params_the_edge_would_reject_are_refused_at_load(
    field: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as err:
        _settings(_rule("l", "warning", "lamp", **{field: params}))
    assert f"{field} {params!r}" in str(err.value) and '{"value": ...}' in str(err.value)
