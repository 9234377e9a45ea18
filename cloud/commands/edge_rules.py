"""The local flood rule each warning sign's gateway runs while its uplink is down,
derived from the cloud's ``device_action`` rules (docs/commands.md, section 11).

A ``flood_stage`` rule with a ``source`` sensor that switches ``lamp`` or ``siren`` on
(``{"value": true}``) becomes ``<switch>_on_cm`` = the sensor's depth for ``min_stage``
(the detector's per-site stages, or its defaults); ``off_below_cm`` is the depth at which
the detector resolves the alert (caution - hysteresis), which is when the cloud switches
both off. The digest is a hash of the rule's content, so it changes exactly when what
the gateway would do changes, and the same rules give the same digest in every process.
The rules come back with version 1: the ordered version is the pusher's
(``cloud/commands/rule_push.py``), which knows what was sent before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud.commands.config import CommandSettings, DeviceActionRule
from cloud.detect.config import FloodConfig
from cloud.detect.flood import STAGES, site_stages
from schemas.edge_rules import SWITCHES, EdgeFloodRule


def edge_flood_rules(
    settings: CommandSettings, flood: FloodConfig, sites: Mapping[str, Mapping[str, Any]]
) -> dict[str, EdgeFloodRule]:
    """sign id -> its local rule. ValueError (naming the rules) when one sign's rules watch
    two sensors, which a single local rule cannot follow."""
    found: dict[str, dict[str, Any]] = {}
    for rule in settings.rules:
        if not _local(rule):
            continue
        assert isinstance(rule, DeviceActionRule) and rule.source is not None
        stages = site_stages(sites.get(rule.source, {}), flood.stages_cm)
        part = found.setdefault(
            rule.target,
            {"sensor": rule.source, "off_below_cm": stages[0] - flood.hysteresis_cm},
        )
        if part["sensor"] != rule.source:
            raise ValueError(
                f"rule {rule.id!r}: sign {rule.target!r} already follows {part['sensor']!r}; "
                f"a local rule follows one sensor, not also {rule.source!r}"
            )
        part[f"{rule.action}_on_cm"] = stages[STAGES.index(rule.min_stage)]
    return {sign: EdgeFloodRule.derive(1, **body) for sign, body in found.items()}


def _local(rule: object) -> bool:
    return (
        isinstance(rule, DeviceActionRule)
        and rule.alert_kind == "flood_stage"
        and rule.source is not None
        and rule.action in SWITCHES
        and rule.params == {"value": True}
    )
