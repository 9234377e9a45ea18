"""The command service against the SHIPPED broker config (deploy/mosquitto): it logs in
with its own account, akita-cloud, sees a gateway's birth, publishes on that gateway's
cmd topic and reads its cmd/result; the gateway logs in with its own account."""

from __future__ import annotations

from pathlib import Path

from cloud.commands.states import CloudState
from cloud.ingest.settings import IngestSettings
from schemas.commands import CommandState
from tests.cloud.commands.conftest import SIGN_GW, make_rig
from tests.cloud.commands.gateway import GatewayPlayer
from tests.servers import running_deployed_mosquitto, wait_for


def test_a_command_round_trips_through_the_shipped_broker(tmp_path: Path) -> None:
    (tmp_path / "broker").mkdir()
    with running_deployed_mosquitto(tmp_path / "broker") as broker:
        cloud_pw = broker.credential("akita-cloud")
        gw_pw = broker.credential(SIGN_GW)
        rig = make_rig(
            tmp_path,
            broker=IngestSettings(broker_port=broker.plain_port),
            username="akita-cloud",
            password=cloud_pw,
        )
        rig.commands.start()
        gw = GatewayPlayer(broker.plain_port, SIGN_GW, password=gw_pw)
        try:
            assert rig.service.wait_connected(10), "akita-cloud could not log in"
            gw.birth()
            wait_for("the birth seen by akita-cloud", lambda: rig.service.online(SIGN_GW))
            lamp = rig.service.issue("plc-araya", "lamp", {"value": True}, issuer="token:ops")
            [got] = gw.wait_commands(1)
            assert str(got.id) == lamp.id and got.params == {"value": True}
            gw.result(got, CommandState.ACCEPTED)
            gw.result(got, CommandState.DONE, readback={"lamp_on": True})
            wait_for("done in the cloud", lambda: rig.service.get(lamp.id).state is CloudState.DONE)
            assert rig.service.get(lamp.id).readback == {"lamp_on": True}
        finally:
            gw.close()
            rig.commands.stop()
