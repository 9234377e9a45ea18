"""The cloud pushes a sign's local flood rule by itself (cloud/commands/rule_push.py):
the choice of version from what was sent and reported, and on a real Mosquitto with the
real gateway (deploy/edge/warning_sign.toml over a pty bus): pushed on the birth,
installed, not pushed again when the gateway comes back with it, a changed rule set
pushed with a higher version, and an older push refused by the gateway saying why."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud.commands.rule_push import Push, RulePusher, next_push
from cloud.commands.states import CloudState
from cloud.ingest.settings import IngestSettings
from edge.agent import Agent
from edge.config import parse_config
from schemas.edge_rules import RULES_UPDATE, EdgeFloodRule
from schemas.wire import DeviceInfo
from tests.cloud.commands.conftest import Rig, make_rig
from tests.edge.sign_peers import GW, SENSOR, SIGN, sample_config, underpass_on_a_bus
from tests.edge.test_warning_sign import until
from tests.servers import Mosquitto

BODY = {"sensor": "fs-1", "lamp_on_cm": 20, "siren_on_cm": 30, "off_below_cm": 8}
RULE = EdgeFloodRule.derive(1, **BODY)
OTHER = EdgeFloodRule.derive(1, **{**BODY, "lamp_on_cm": 25})


def _push(rule: EdgeFloodRule, version: int, state: CloudState, installed: Any = None) -> Push:
    readback = installed.readback() if installed is not None else None
    return Push(version, rule.digest, state, readback)


def test_versions_are_ordered_above_everything_sent_or_reported() -> None:
    assert next_push(RULE, []) == RULE  # first push: version 1
    v1 = RULE.with_version(1)
    done = [_push(RULE, 1, CloudState.DONE, v1)]
    assert next_push(RULE, done) is None  # the gateway has it
    assert next_push(RULE, [_push(RULE, 1, CloudState.SENT)]) is None  # on its way
    changed = next_push(OTHER, done)
    assert changed is not None and changed.version == 2 and changed.digest == OTHER.digest
    again = next_push(RULE, [_push(RULE, 1, CloudState.EXPIRED)])
    assert again is not None and again.version == 1  # the same rule, same version, new id
    # the gateway holds version 9 (unknown here) and refuses our 2: the next is 10
    newer = OTHER.with_version(9)
    refused = [*done, _push(OTHER, 2, CloudState.REJECTED, newer)]
    bumped = next_push(RULE, refused)
    assert bumped is not None and bumped.version == 10
    # refused for another reason (no such sensor there): not sent again and again
    assert next_push(OTHER, [*done, _push(OTHER, 2, CloudState.REJECTED)]) is None


def _sign_rules() -> list[dict[str, Any]]:
    return [
        {"id": "lamp", "type": "device_action", "alert_kind": "flood_stage", "source": SENSOR,
         "min_stage": "warning", "target": SIGN, "action": "lamp",
         "params": {"value": True}, "off_params": {"value": False}},
        {"id": "siren", "type": "device_action", "alert_kind": "flood_stage", "source": SENSOR,
         "min_stage": "danger", "target": SIGN, "action": "siren",
         "params": {"value": True}, "off_params": {"value": False}},
    ]  # fmt: skip


def _pushes(rig: Rig) -> list[Any]:
    found = rig.service.query(device_id=SIGN)
    return sorted((c for c in found if c.action == RULES_UPDATE), key=lambda c: c.issued_at)


def test_the_cloud_pushes_the_rule_on_birth_and_only_when_it_differs(
    tmp_path: Path, mosquitto: Mosquitto, unique: str
) -> None:
    broker = IngestSettings(broker_port=mosquitto.port, client_id=f"ingest-{unique}")
    rig = make_rig(tmp_path, broker=broker, rules=_sign_rules())
    rig.registry.provision(GW, [DeviceInfo(device_id=SENSOR, kind="flood_sensor"),  # type: ignore[arg-type]
                                DeviceInfo(device_id=SIGN, kind="warning_sign")])  # type: ignore[arg-type]  # fmt: skip
    rig.service.clock = lambda: datetime.now(UTC)  # the real gateway runs on wall time
    births: list[bool] = []
    rig.commands.start()
    pusher = rig.commands.pusher
    assert isinstance(pusher, RulePusher)

    def birth(gateway_id: str, online: bool) -> None:
        if gateway_id == GW:
            births.append(online)

    rig.service.status_listeners.append(birth)
    try:
        with underpass_on_a_bus() as site:
            cfg = parse_config(sample_config(tmp_path, mosquitto.port, site.path))

            async def run_gateway(step: Any) -> None:
                stop = asyncio.Event()
                task = asyncio.create_task(Agent(cfg).run(stop))
                await step()
                stop.set()
                await task

            async def first() -> None:
                await until("rule pushed and installed", lambda: _states(rig) == ["done"])

            asyncio.run(run_gateway(first))
            [done] = _pushes(rig)
            rule = pusher.rules[SIGN]
            assert done.params["version"] == 1 and done.issuer == "rule:local-flood-rule"
            assert done.readback == {"rules_version": 1, "rules_digest": rule.digest}
            assert done.priority == "high" and done.expires_at > done.issued_at

            seen = births.count(True)  # retained births of earlier runs included

            async def back_again() -> None:  # same rule installed: nothing is sent
                await until("the gateway's next birth", lambda: births.count(True) > seen)
                assert pusher.flush(10)
                assert _states(rig) == ["done"]
                changed = EdgeFloodRule.derive(1, sensor=SENSOR, lamp_on_cm=22, siren_on_cm=30,
                                               off_below_cm=8)  # fmt: skip
                pusher.replace({SIGN: changed})
                await until("changed rule installed", lambda: _states(rig) == ["done", "done"])
                # a late, older push (by hand) is refused, naming the installed version
                late = rig.service.issue(
                    SIGN, RULES_UPDATE, dict(rule.params()), issuer="token:ops"
                )
                await until("late push answered", lambda: rig.service.get(late.id).state
                            is CloudState.REJECTED)  # fmt: skip
                got = rig.service.get(late.id)
                assert "version 1 is older than the installed version 2" in (got.reason or "")
                assert got.readback == {"rules_version": 2, "rules_digest": changed.digest}
                assert pusher.flush(10)
                assert len(_pushes(rig)) == 3  # the refusal made the cloud send nothing more

            asyncio.run(run_gateway(back_again))
        installed = [c.readback for c in _pushes(rig) if c.state is CloudState.DONE]
        assert [r["rules_version"] for r in installed if r] == [1, 2]
        audit = [a for a in rig.service.audit_trail() if a.action == "rules_push"]
        assert len(audit) == 2 and "gateway reports none" in (audit[-1].note or "")
    finally:
        rig.commands.stop()


def _states(rig: Rig) -> list[str]:
    return [c.state.value for c in _pushes(rig) if c.issuer == "rule:local-flood-rule"]
