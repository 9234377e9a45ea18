"""A small MQTT client that plays a gateway for the command tests: it publishes its birth
and Last Will, subscribes to its own command topic, records every command it receives and
answers results (all on a real Mosquitto)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from schemas import topics
from schemas.codec import decode_model, encode_model
from schemas.commands import Command, CommandResult, CommandState
from schemas.wire import Batch, GatewayStatus
from tests.servers import wait_for


class GatewayPlayer:
    """``answer``: reply ``accepted`` then ``done`` (with ``readback`` = the params) to every
    command as it arrives; otherwise the test answers with :meth:`result`."""

    def __init__(
        self, port: int, gateway_id: str, *, answer: bool = False, password: str | None = None
    ) -> None:
        self.gateway_id = gateway_id
        self.answer = answer
        self.received: list[Command] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._seq = 0
        # with a password it logs in as the gateway's own broker account (deploy/mosquitto)
        client_id = gateway_id if password else f"player-{gateway_id}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if password:
            self.client.username_pw_set(gateway_id, password)
        self.client.will_set(topics.status(gateway_id), self._status("offline"), qos=1, retain=True)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topics.command(gateway_id), qos=1)
        assert self._subscribed.wait(10), "subscription to the command topic"

    def _status(self, state: str) -> bytes:
        status = GatewayStatus(gateway_id=self.gateway_id, state=state, ts=datetime.now(UTC))  # type: ignore[arg-type]
        return encode_model(status)

    def birth(self) -> None:
        self._publish(topics.status(self.gateway_id), self._status("online"), retain=True)

    def offline(self) -> None:
        """What the broker's Last Will says when the uplink drops."""
        self._publish(topics.status(self.gateway_id), self._status("offline"), retain=True)

    def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if threading.current_thread() is not self.client._thread:
            info.wait_for_publish(10)  # never in paho's own loop: it must read the PUBACK

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        command = decode_model(Command, bytes(msg.payload))
        with self._lock:
            self.received.append(command)
        if self.answer:
            self.result(command, CommandState.ACCEPTED)
            self.result(command, CommandState.DONE, readback=dict(command.params))

    def result(
        self,
        command: Command,
        state: CommandState,
        *,
        readback: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        """Publish a result for ``command`` on this gateway's own result topic."""
        gateway = self.gateway_id
        result = CommandResult(
            id=command.id,
            gateway_id=gateway,
            device_id=command.device_id,
            state=state,
            ts=datetime.now(UTC),
            readback=readback,
            reason=reason,
        )
        self._publish(topics.command_result(gateway), encode_model(result))

    def telemetry(self, readings: list[dict[str, Any]]) -> None:
        batch = Batch.model_validate(
            {
                "gateway_id": self.gateway_id,
                "seq": self._seq,
                "sent_at": datetime.now(UTC),
                "readings": readings,
            }
        )
        self._seq += 1
        self._publish(topics.telemetry(self.gateway_id), encode_model(batch))

    def commands(self) -> list[Command]:
        with self._lock:
            return list(self.received)

    def wait_commands(self, n: int, timeout: float = 20.0) -> list[Command]:
        wait_for(f"{n} commands at {self.gateway_id}", lambda: len(self.commands()) >= n, timeout)
        return self.commands()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
