"""The command service's own MQTT connection: publishes commands, receives results and
gateways' birth / Last Will messages.

A persistent session (MQTT 5 session expiry, or a 3.1.1 persistent session) so results
published while the cloud restarts wait at the broker; every result is handled before
paho acknowledges it (QoS 1, at least once: a result handled twice changes nothing).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.commands.config import CommandSettings
from cloud.ingest.settings import IngestSettings
from schemas import topics
from schemas.topics import Channel

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
SESSION_EXPIRY_S = 7 * 86_400  # as long as a command may live


def client_id(settings: CommandSettings, broker: IngestSettings) -> str:
    # the shipped broker ties client id to username; without one, follow the ingest's own
    # (unique per process), so two cloud processes never take each other's session
    if settings.client_id or settings.username:
        return settings.client_id or settings.username or ""
    return f"akita-cloud-{broker.client_id or socket.gethostname()}"[:64]


class CommandLink:
    """Connects in the background and reconnects on its own (paho's loop)."""

    def __init__(
        self,
        broker: IngestSettings,
        settings: CommandSettings,
        *,
        on_result: MessageHandler,
        on_status: MessageHandler,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self._broker = broker
        self._on_result = on_result
        self._on_status = on_status
        self._on_connected = on_connect
        self.client_id = client_id(settings, broker)
        self._v5 = broker.mqtt_version == "5"
        self._connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else False,
        )
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else None
            self.client.username_pw_set(settings.username, password)
        if broker.tls:
            self.client.tls_set(
                ca_certs=str(broker.ca_file) if broker.ca_file else None,
                certfile=str(broker.cert_file) if broker.cert_file else None,
                keyfile=str(broker.key_file) if broker.key_file else None,
            )
            self.client.tls_insecure_set(broker.tls_insecure)
        self.client.reconnect_delay_set(1, 5)
        self.client.on_connect = self._connect_cb
        self.client.on_disconnect = self._disconnect_cb
        self.client.on_message = self._message_cb
        self.client.on_subscribe = self._subscribe_cb

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        kwargs = {"clean_start": False, "properties": props} if self._v5 else {}
        self.client.connect_async(
            self._broker.broker_host,
            self._broker.broker_port,
            keepalive=self._broker.keepalive_s,
            **kwargs,  # type: ignore[arg-type]
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def publish(self, gateway_id: str, payload: bytes) -> bool:
        """QoS 1, never retained (a retained command would run again on every reconnect).
        False when it could not even be queued (not connected)."""
        if not self.connected:
            return False
        info = self.client.publish(topics.command(gateway_id), payload, qos=1, retain=False)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    # -- paho callbacks (network thread) ---------------------------------------------------

    def _connect_cb(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.warning("commands_broker_refused client_id=%s reason=%s", self.client_id, rc)
            return
        client.subscribe(
            [(topics.subscription(Channel.CMD_RESULT), 1), (topics.subscription(Channel.STATUS), 1)]
        )
        self._connected.set()
        log.info("commands_broker_connected client_id=%s", self.client_id)
        if self._on_connected is not None:
            self._on_connected()

    def _disconnect_cb(
        self, _c: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        self._connected.clear()
        log.warning("commands_broker_disconnected client_id=%s reason=%s", self.client_id, rc)

    def _subscribe_cb(self, _c: mqtt.Client, _u: object, _mid: int, codes: Any, _p: object) -> None:
        # a broker whose roles do not grant the results or statuses answers 0x87: say so,
        # or results would be lost without a word
        refused = [c for c in codes if getattr(c, "is_failure", False) or c == 0x80]
        if refused:
            log.error(
                "commands_subscribe_refused client_id=%s codes=%s reason=the broker account "
                "may not read akita/v1/+/cmd/result or status; results will not arrive",
                self.client_id,
                refused,
            )

    def _message_cb(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        parsed = topics.parse(msg.topic)
        if parsed is None:
            return
        gateway_id, channel = parsed
        try:
            if channel is Channel.CMD_RESULT:
                self._on_result(gateway_id, bytes(msg.payload))
            elif channel is Channel.STATUS:
                self._on_status(gateway_id, bytes(msg.payload))
        except Exception:  # the network thread must survive one bad message; say which
            log.exception("commands_message_failed topic=%s", msg.topic)
