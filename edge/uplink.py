"""MQTT uplink (paho-mqtt 2.x): TLS, auth, birth and Last Will, QoS 1 batches, health.

paho's network thread does the I/O and reconnects with exponential backoff
(``reconnect_min_s`` .. ``reconnect_max_s``). It re-sends QoS 1 messages that were
in flight when the link dropped. Every callback is handed to the asyncio loop with
``call_soon_threadsafe``; nothing else crosses threads.

On connect the gateway publishes, retained, its ``online`` :class:`GatewayStatus`
(birth) and its :class:`GatewayMeta` device registry. The broker publishes the
retained ``offline`` Last Will when the gateway vanishes; a graceful stop publishes
``offline`` itself (a clean disconnect suppresses the will).

With ``on_command`` the gateway subscribes to its own ``cmd`` topic (QoS 1) in a
persistent session, so the broker keeps commands while the link is down, and acknowledges
each command only when told (:meth:`Uplink.ack`, after the command is committed to disk).
The birth then waits for the broker's SUBACK of that subscription: the cloud publishes
what waits for a gateway the moment it reads its birth, and a broker drops a command for
a topic nobody is subscribed to yet (a first connect, a session the broker lost), which
would leave it to the cloud's next retry (``commands.retry_s``, 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.cameras.devices import camera_infos
from edge.config import EdgeConfig
from schemas import topics
from schemas.codec import encode_model
from schemas.wire import DeviceInfo, ExtraField, GatewayMeta, GatewayState, GatewayStatus

log = logging.getLogger(__name__)
VERSION = "0.1.0"


def gateway_meta(config: EdgeConfig) -> GatewayMeta:
    """The retained device registry for this gateway, from its config."""
    return GatewayMeta(
        gateway_id=config.gateway.id,
        ts=datetime.now(UTC),
        devices=[
            DeviceInfo(
                device_id=d.id,
                kind=d.kind,
                site=d.site,
                district=d.district,
                area=d.area,
                lat=d.lat,
                lon=d.lon,
                poll_interval_s=d.poll_interval_s,
                vehicle_type=d.vehicle_type,
                extra_fields=[
                    ExtraField.model_validate(x.model_dump(exclude={"invalidates"}))
                    for x in d.extra_fields
                ]
                or None,
            )
            for d in config.devices
        ]
        + camera_infos(config.cameras),
    )


class Uplink:
    """One MQTT session for one gateway.

    ``on_ack(mid)`` runs on the asyncio loop when the broker acknowledges a QoS 1 publish;
    ``on_state(connected)`` when the session comes up or goes down.
    """

    def __init__(
        self,
        config: EdgeConfig,
        *,
        on_ack: Callable[[int], None],
        on_state: Callable[[bool], None],
        max_inflight: int = 50,
        boot_id: str | None = None,
        on_command: Callable[[bytes, int, int], None] | None = None,
    ) -> None:
        self.config = config
        self.gateway_id = config.gateway.id
        self.boot_id = boot_id  # of the spool's seq counter, in every birth message
        self._on_ack = on_ack
        self._on_state = on_state
        self._on_command = on_command
        self._result_acks: dict[int, Callable[[], None]] = {}  # mid -> result's PUBACK
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cmd_sub_mid: int | None = None  # the cmd SUBSCRIBE the birth waits for
        self.connected = False
        m = config.mqtt
        # the shipped broker makes every client id its username (deploy/mosquitto)
        client_id = m.client_id or m.username or f"akita-edge-{self.gateway_id}"
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            # commands wait at the broker while the link is down (the client id is fixed)
            clean_session=on_command is None,
            protocol=mqtt.MQTTv311,
            manual_ack=on_command is not None,
        )
        c.max_inflight_messages_set(max_inflight)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(
            min_delay=max(1, int(m.reconnect_min_s)), max_delay=int(m.reconnect_max_s)
        )
        if m.username:
            c.username_pw_set(m.username, m.secret())
        if m.tls:
            ctx = ssl.create_default_context(cafile=str(m.ca_file) if m.ca_file else None)
            if m.cert_file and m.key_file:
                ctx.load_cert_chain(str(m.cert_file), str(m.key_file))
            c.tls_set_context(ctx)
        will = GatewayStatus(gateway_id=self.gateway_id, state=GatewayState.OFFLINE)
        c.will_set(topics.status(self.gateway_id), encode_model(will), qos=1, retain=True)
        c.on_connect = self._connected
        c.on_disconnect = self._disconnected
        c.on_publish = self._published
        c.on_message = self._message
        c.on_subscribe = self._subscribed
        self._client = c

    # -- paho thread -> asyncio loop ---------------------------------------------------------

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            log.warning("mqtt_refused gateway=%s reason=%s", self.gateway_id, rc)
            return
        if self._on_command is None:
            self._announce(client)
            return
        # the birth only once the subscription is in place (module docstring); the SUBACK
        # comes on this same network thread, after this callback has returned
        _rc, self._cmd_sub_mid = client.subscribe(topics.command(self.gateway_id), qos=1)

    def _subscribed(
        self, client: mqtt.Client, _u: Any, mid: int, codes: Any, _p: Any = None
    ) -> None:
        if mid != self._cmd_sub_mid:
            return
        self._cmd_sub_mid = None
        refused = [c for c in codes if getattr(c, "is_failure", False)]
        if refused:  # online all the same: the readings must flow; say why commands cannot
            log.error(
                "commands_subscribe_refused gateway=%s codes=%s reason=the broker account "
                "may not read its cmd topic; commands will not arrive",
                self.gateway_id,
                refused,
            )
        self._announce(client)

    def _announce(self, client: mqtt.Client) -> None:
        """Birth, device registry, then the session counts as up (batches may flow)."""
        birth = GatewayStatus(
            gateway_id=self.gateway_id,
            state=GatewayState.ONLINE,
            ts=datetime.now(UTC),
            version=VERSION,
            boot_id=self.boot_id,
        )
        client.publish(topics.status(self.gateway_id), encode_model(birth), qos=1, retain=True)
        meta = encode_model(gateway_meta(self.config))
        client.publish(topics.meta(self.gateway_id), meta, qos=1, retain=True)
        self._post(self._set_state, True)

    def _disconnected(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        self._post(self._set_state, False, str(rc))

    def _published(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any = None) -> None:
        self._post(self._acked, mid)

    def _message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self._on_command is not None:
            self._post(self._on_command, bytes(msg.payload), msg.mid, msg.qos)

    def _acked(self, mid: int) -> None:
        result_acked = self._result_acks.pop(mid, None)
        if result_acked is not None:
            result_acked()
        else:
            self._on_ack(mid)

    def _set_state(self, up: bool, reason: str = "") -> None:
        if up == self.connected:
            return
        self.connected = up
        m = self.config.mqtt
        if up:
            log.info("mqtt_connected gateway=%s broker=%s:%s", self.gateway_id, m.host, m.port)
        else:
            log.warning("mqtt_disconnected gateway=%s reason=%s", self.gateway_id, reason)
        self._on_state(up)

    # -- asyncio side ------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        m = self.config.mqtt
        self._client.connect_async(m.host, m.port, keepalive=m.keepalive_s)
        self._client.loop_start()

    def publish_batch(self, payload: bytes) -> int:
        """Queue a QoS 1 batch; returns the message id that ``on_ack`` will report."""
        info = self._client.publish(topics.telemetry(self.gateway_id), payload, qos=1)
        return info.mid

    def publish_result(self, payload: bytes, on_ack: Callable[[], None]) -> None:
        """Queue a QoS 1 CommandResult; ``on_ack`` runs on the loop at its PUBACK."""
        info = self._client.publish(topics.command_result(self.gateway_id), payload, qos=1)
        self._result_acks[info.mid] = on_ack

    def publish_image(self, payload: bytes, on_ack: Callable[[], None]) -> None:
        """Queue a QoS 1 camera image (edge/cameras); ``on_ack`` runs at its PUBACK."""
        info = self._client.publish(topics.image(self.gateway_id), payload, qos=1)
        self._result_acks[info.mid] = on_ack  # the same per-message PUBACK table as results

    def ack(self, mid: int, qos: int) -> None:
        """PUBACK a received command (only once it is committed to disk)."""
        self._client.ack(mid, qos)

    def publish_health(self, payload: bytes) -> None:
        if self.connected:
            self._client.publish(topics.health(self.gateway_id), payload, qos=0)

    async def stop(self, timeout: float = 2.0) -> None:
        """Publish ``offline`` (if connected), disconnect and stop the network thread."""
        if self.connected:
            status = GatewayStatus(
                gateway_id=self.gateway_id, state=GatewayState.OFFLINE, ts=datetime.now(UTC)
            )
            info = self._client.publish(
                topics.status(self.gateway_id), encode_model(status), qos=1, retain=True
            )
            with contextlib.suppress(RuntimeError, ValueError):  # link dropped meanwhile
                await asyncio.get_running_loop().run_in_executor(
                    None, info.wait_for_publish, timeout
                )
        self._client.disconnect()
        await asyncio.get_running_loop().run_in_executor(None, self._client.loop_stop)
        self._loop = None
