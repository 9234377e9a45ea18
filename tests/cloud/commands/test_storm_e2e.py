"""Issue 15's first acceptance point, end to end: rising water at the underpass's depth
sensor (simulated Modbus RTU over a pty) -> the real gateway -> Mosquitto -> the cloud
(ingest, flood detector, alert, rule) -> command -> the gateway -> the simulated sign.
The lamp goes on at 警戒, the siren at 危険, both off after the all-clear, each confirmed
by the gateway's read-back, by the sign's own coils and by the readings the cloud
stored. Waits are bounded conditions; the latency figure is bench/downlink's."""

from __future__ import annotations

from pathlib import Path

from cloud.commands.states import CloudState
from schemas.edge_rules import RULES_UPDATE
from schemas.kinds.warning_sign import LIT_MIN_A
from tests.cloud.commands.storm_rig import StormSite, storm_site
from tests.edge.sign_peers import SENSOR
from tests.servers import Mosquitto, wait_for


def _done(s: StormSite, rule: str, value: bool) -> bool:
    return any(
        c.state is CloudState.DONE and c.params == {"value": value} for c in s.commands(rule)
    )


def _rule_installed(s: StormSite) -> bool:
    return any(c.action == RULES_UPDATE and c.state is CloudState.DONE for c in s.commands())


def _stored_depth(s: StormSite) -> float | None:
    point = s.cloud.store.latest(SENSOR).get("depth")
    return None if point is None or point.value is None else float(point.value)


def _lit(s: StormSite) -> bool:
    return s.latest("lamp_on") is True and (s.latest("lamp_current") or 0) >= LIT_MIN_A


def test_storm_lamp_at_warning_siren_at_danger_both_off_after_the_all_clear(
    tmp_path: Path, mosquitto: Mosquitto, unique: str
) -> None:
    with storm_site(tmp_path, mosquitto.port, f"ingest-{unique}") as s:
        wait_for("the local rule pushed on the birth", lambda: _rule_installed(s))
        s.depth_cm(15)  # 注意: an alert, no switch
        wait_for("15 cm stored", lambda: (_stored_depth(s) or 0) >= 15)
        assert s.cloud.commands.rules.flush(10)
        assert not s.commands("araya-lamp") and not s.site.sign.lamp
        s.depth_cm(25)  # 警戒
        wait_for("lamp on, read back", lambda: _done(s, "araya-lamp", True), 30)
        assert s.site.sign.lamp and not s.site.sign.siren
        wait_for("the cloud stores the lamp on and lit", lambda: _lit(s), 30)
        s.depth_cm(35)  # 危険
        wait_for("siren on, read back", lambda: _done(s, "araya-siren", True), 30)
        assert s.site.sign.siren
        wait_for("the cloud stores the siren on", lambda: s.latest("siren_on") is True, 30)
        s.depth_cm(0)  # the all-clear
        wait_for("lamp off, read back", lambda: _done(s, "araya-lamp", False), 30)
        wait_for("siren off, read back", lambda: _done(s, "araya-siren", False), 30)
        assert not s.site.sign.lamp and not s.site.sign.siren
        wait_for("the cloud stores both off, dark", lambda: (
            s.latest("lamp_on") is False and s.latest("siren_on") is False
            and (s.latest("lamp_current") or 0) < LIT_MIN_A), 30)  # fmt: skip
        switches = [c for c in s.commands() if c.action in ("lamp", "siren")]
        assert [(c.action, c.params["value"]) for c in switches[:2]] == [
            ("lamp", True), ("siren", True)]  # fmt: skip
        assert sorted((c.action, c.params["value"]) for c in switches[2:]) == [
            ("lamp", False), ("siren", False)]  # fmt: skip
        for c in switches:  # each confirmed by the gateway's read-back of its coil
            field = f"{c.action}_on"
            assert c.state is CloudState.DONE and c.readback == {field: c.params["value"]}, c
            assert c.issuer.startswith("rule:") and c.priority == "life_safety"
        coil_writes = [w for w in s.site.sign_unit.writes if w[0] == 5]
        assert coil_writes == [(5, 0, [1]), (5, 1, [1]), *coil_writes[2:]]
        assert sorted(coil_writes[2:]) == [(5, 0, [0]), (5, 1, [0])]  # once each
