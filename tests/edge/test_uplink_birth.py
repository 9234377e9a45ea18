"""The gateway's birth means "commands reach me now" (docs/commands.md, offline gateways):
the cloud publishes what waits for a gateway the moment it reads its birth, and a broker
drops a command for a topic nobody is subscribed to (a first connect, or a session the
broker lost). So the birth must follow the broker's SUBACK of the ``cmd`` subscription.

Tested by order on the wire, not by timing: a relay that reads the MQTT packets between
the gateway and Mosquitto holds the gateway's SUBSCRIBE while a birth has already gone
ahead of it (a slow link can deliver it that late), until a peer playing the cloud has
published a command on that birth and the broker has acknowledged it. The first command
must reach the gateway. Before the fix the birth went out ahead of the SUBSCRIBE, that
command was dropped by the broker and waited for the cloud's 30 s retry (the flaky
"local rule pushed on the birth" of tests/cloud/commands/test_storm_uplink_down.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from pymodbus.datastore import ModbusServerContext

from edge.agent import Agent
from edge.config import parse_config
from schemas import topics
from tests.edge.downlink_peers import RecordingSlave, command, subscribed_client
from tests.edge.peers import tcp_server
from tests.edge.test_commands import GW, PUMP, pump_config, until
from tests.servers import Mosquitto

PUBLISH, SUBSCRIBE, SUBACK = 3, 8, 9


def _read_packet(sock: socket.socket) -> bytes | None:
    """One whole MQTT control packet, or None at the end of the stream."""

    def exactly(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    head = exactly(1)
    if head is None:
        return None
    length, shift, header = 0, 0, head
    while True:
        b = exactly(1)
        if b is None:
            return None
        header += b
        length |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            break
    body = exactly(length) if length else b""
    return None if body is None else header + body


def _birth(packet: bytes) -> bool:
    """Is this the gateway's online status (its birth)?"""
    if packet[0] >> 4 != PUBLISH:
        return False
    i = 1
    while packet[i] & 0x80:
        i += 1
    i += 1
    topic_len = int.from_bytes(packet[i : i + 2], "big")
    topic = packet[i + 2 : i + 2 + topic_len].decode()
    payload = packet[i + 2 + topic_len + (2 if (packet[0] >> 1) & 3 else 0) :]
    return topic == topics.status(GW) and json.loads(payload).get("state") == "online"


class SubscribeGate:
    """A TCP relay between one gateway and the broker that forwards whole MQTT packets,
    logs their order (``events``), and holds a SUBSCRIBE that follows a birth until
    :meth:`release` (a slow link delivering it late)."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.events: list[str] = []
        self._released = threading.Event()
        self._birth_forwarded = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def release(self) -> None:
        self._released.set()

    def _log(self, event: str) -> None:
        with self._lock:
            self.events.append(event)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while (packet := _read_packet(src)) is not None:
                kind = packet[0] >> 4
                if kind == SUBSCRIBE:
                    self._log("subscribe")
                    if self._birth_forwarded:
                        self._released.wait()
                if _birth(packet):
                    self._log("birth")
                    self._birth_forwarded = True
                dst.sendall(packet)
        self._shut(src, dst)

    def _down(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while (packet := _read_packet(src)) is not None:
                if packet[0] >> 4 == SUBACK:
                    self._log("suback")  # before the gateway can act on it
                dst.sendall(packet)
        self._shut(src, dst)

    @staticmethod
    def _shut(*socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.release()
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            self._shut(s)
            s.close()


class BirthCloud:
    """Plays the command service: reads the gateway's status and results, publishes
    commands (QoS 1, returning once the broker has acknowledged them)."""

    def __init__(self, port: int) -> None:
        self.online = threading.Event()
        self.results: list[dict[str, Any]] = []
        subs = [(topics.status(GW), 1), (topics.command_result(GW), 1)]
        self.client = subscribed_client(port, subs, self._on)

    def _on(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        if msg.topic == topics.status(GW):
            if body.get("state") == "online":
                self.online.set()
        else:
            self.results.append(body)

    def send(self, payload: dict[str, Any]) -> None:
        info = self.client.publish(topics.command(GW), json.dumps(payload).encode(), qos=1)
        info.wait_for_publish(10)

    def final(self, command_id: str) -> bool:
        return any(r["id"] == command_id and r["state"] == "done" for r in list(self.results))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_command_published_on_the_birth_reaches_the_gateway(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gate = SubscribeGate(mosquitto.port)
    cloud = BirthCloud(mosquitto.port)
    ctx = ModbusServerContext(slaves={1: RecordingSlave()}, single=False)

    async def go() -> tuple[int, list[str]]:
        async with tcp_server(ctx) as port:
            agent = Agent(parse_config(pump_config(tmp_path, gate.port, port)))
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            try:
                # a first connect: the broker holds no session, no subscription for it
                await until("the gateway's birth", cloud.online.is_set)
                on_birth = command(GW, PUMP, "current_limit", {"value": 1.5})
                await asyncio.to_thread(cloud.send, on_birth)  # as the cloud does on a birth
                gate.release()  # a SUBSCRIBE held behind the birth goes on now
                await until("the SUBACK", lambda: "suback" in gate.events)
                later = command(GW, PUMP, "current_limit", {"value": 2.5})
                await asyncio.to_thread(cloud.send, later)
                await until("the later command done", lambda: cloud.final(later["id"]))
                # QoS 1 on one topic from one publisher keeps its order: had the first one
                # reached the gateway's subscription, it was received before the later one
                assert agent.commands is not None
                received = agent.commands.stats.received
                if received == 2:  # and it is carried out
                    await until("the first command done", lambda: cloud.final(on_birth["id"]))
            finally:
                stop.set()
                await task
        return received, list(gate.events)

    try:
        received, events = asyncio.run(go())
    finally:
        cloud.close()
        gate.close()
    assert received == 2, f"the command published on the birth was lost: {events}"
    assert events.index("suback") < events.index("birth"), events
