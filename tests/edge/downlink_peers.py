"""Peers for the downlink tests: a small MQTT client that plays the cloud, a Modbus slave
that records every write it is sent, and a TCP relay that plays the cellular link."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.datastore import ModbusSlaveContext

from schemas import topics
from tests.edge.peers import StrictBlock


def subscribed_client(
    port: int, subs: list[tuple[str, int]], on_message: Callable[..., None]
) -> mqtt.Client:
    """A running client plays the cloud's side, once the broker acknowledged ``subs``."""
    ready = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(subs)
    c.on_subscribe = lambda *a: ready.set()
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert ready.wait(10), f"subscription to {subs}"
    return c


class Cloud:
    """Publishes commands (QoS 1) and records every result and reading of one gateway."""

    def __init__(self, port: int, gateway: str) -> None:
        self.gateway = gateway
        self.results: list[dict[str, Any]] = []
        self.events: list[tuple[str, Any]] = []  # ("result", r) / ("reading", r), arrival order
        self.lock = threading.Lock()
        subs = [(topics.command_result(gateway), 1), (topics.telemetry(gateway), 1)]
        self.client = subscribed_client(port, subs, self._on)

    def _on(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        with self.lock:
            if msg.topic.endswith("/cmd/result"):
                self.results.append(body)
                self.events.append(("result", body))
            else:
                for r in body["readings"]:
                    self.events.append(("reading", r))

    def send(self, payload: dict[str, Any] | bytes) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(topics.command(self.gateway), data, qos=1)
        info.wait_for_publish(10)

    def states(self, command_id: str) -> list[str]:
        with self.lock:
            return [r["state"] for r in self.results if r["id"] == command_id]

    def final(self, command_id: str) -> dict[str, Any] | None:
        with self.lock:
            done = [r for r in self.results if r["id"] == command_id and r["state"] != "accepted"]
        return done[-1] if done else None

    def readings(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for kind, r in self.events if kind == "reading"]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def command(
    gateway: str,
    device: str,
    action: str,
    params: dict[str, Any] | None = None,
    *,
    lifetime_s: float = 300.0,
    priority: str = "normal",
    issued: datetime | None = None,
) -> dict[str, Any]:
    issued = issued or datetime.now(UTC)
    return {
        "v": 1,
        "id": str(uuid.uuid4()),
        "gateway_id": gateway,
        "device_id": device,
        "action": action,
        "params": params or {},
        "issued_at": issued.isoformat(),
        "expires_at": (issued + timedelta(seconds=lifetime_s)).isoformat(),
        "priority": priority,
        "issuer": "user:test",
    }


class RecordingSlave(ModbusSlaveContext):
    """A slave whose every write is recorded as (function code, address, values);
    ``frozen`` holding addresses ignore writes (a device that will not take the value)."""

    def __init__(self, size: int = 100, frozen: frozenset[int] = frozenset()) -> None:
        super().__init__(
            di=StrictBlock(0, [False] * (size + 1)),
            co=StrictBlock(0, [False] * (size + 1)),
            hr=StrictBlock(0, [0] * (size + 1)),
            ir=StrictBlock(0, [0] * (size + 1)),
        )
        self.writes: list[tuple[int, int, list[Any]]] = []
        self.frozen = frozen

    def setValues(self, fc_as_hex: int, address: int, values: Any) -> None:  # type: ignore[override]
        self.writes.append((fc_as_hex, address, list(values)))
        if fc_as_hex in (6, 16) and address in self.frozen:
            return
        super().setValues(fc_as_hex, address, values)


class Relay:
    """A TCP relay (the gateway's cellular link): ``cut()`` drops it, ``mend()`` restores."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.up = threading.Event()
        self.up.set()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()  # no coverage: the connection drops at once
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up.clear()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def mend(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self._listener.close()
