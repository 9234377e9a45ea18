"""A lean MQTT 3.1.1 QoS 1 publisher over a plain TCP socket: the ingest benchmark's
load generator (like emqtt-bench), not product code.

Why not paho: the benchmark runs the simulated gateways on the same 2-core machine as
the system under test (Mosquitto, the ingest workers, influxd). With paho-mqtt (its
network-loop thread, per-message ``MQTTMessageInfo`` and locking) the publishers cost
0.53-0.57 CPU s per 100k readings, about as much as the ingest itself (0.8-0.9), so
the load generator ate a large share of the cores it was meant to load. In production
the gateways are remote Raspberry Pis, so that cost is a measurement artefact. This
client only does what the benchmark needs: CONNECT, pipelined QoS 1 PUBLISHes joined
into large ``sendall`` writes, PUBACK counting, PINGREQ when idle, DISCONNECT. The
product itself (edge uplink, cloud ingest) keeps using paho-mqtt.

Single-threaded: acknowledgements are read with a zero-timeout ``select`` after each
write, or while waiting (rate limiting, a full in-flight window, the final drain). At
most ``max_inflight`` PUBACKs (4 bytes each) can be pending, so they always fit in
the socket buffers and a blocking write cannot deadlock against unread acks.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Hashable

CONNECT, CONNACK, PUBLISH_QOS1, PUBACK = 0x10, 0x20, 0x32, 0x40
PINGREQ, PINGRESP, DISCONNECT = b"\xc0\x00", 0xD0, b"\xe0\x00"
CONNACK_CODES = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


class MqttError(RuntimeError):
    """The broker refused, closed the connection, or never acknowledged."""


def varint(n: int) -> bytes:
    """MQTT's remaining-length encoding: 7 bits a byte, least significant first."""
    if not 0 <= n <= 268_435_455:
        raise ValueError(f"remaining length {n} out of range")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        if n:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


def mqtt_string(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


class Publisher:
    """One MQTT connection publishing QoS 1 messages, pipelined.

    ``add`` queues a PUBLISH (written once ``chunk_bytes`` have accumulated, or on
    ``flush``); every message carries a hashable ``tag`` and ``take_acked`` returns how
    many messages of each tag the broker acknowledged since the last call.
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        keepalive: int = 60,
        max_inflight: int = 1000,
        chunk_bytes: int = 64 * 1024,
        timeout: float = 120.0,
    ) -> None:
        self.max_inflight = max_inflight
        self.chunk_bytes = chunk_bytes
        self.timeout = timeout
        self._pending: dict[int, Hashable] = {}  # packet id -> tag, until PUBACK
        self._acked: dict[Hashable, int] = {}
        self._next_id = 0
        self._chunk: list[bytes] = []
        self._chunk_len = 0
        self._rx = b""
        self._headers: dict[int, bytes] = {}  # remaining length -> fixed header
        self._ids = [i.to_bytes(2, "big") for i in range(65536)]

        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = (
            mqtt_string("MQTT")
            + bytes([4, 0x02])  # protocol level 4 (3.1.1), clean session
            + keepalive.to_bytes(2, "big")
            + mqtt_string(client_id)
        )
        self.sock.sendall(bytes([CONNECT]) + varint(len(body)) + body)
        self._last_write = time.monotonic()
        connack = b""
        while len(connack) < 4:
            data = self.sock.recv(4 - len(connack))
            if not data:
                raise MqttError(f"{client_id}: broker closed the connection before CONNACK")
            connack += data
        if connack[0] != CONNACK or connack[1] != 2:
            raise MqttError(f"{client_id}: expected CONNACK, got {connack.hex()}")
        if connack[3] != 0:
            reason = CONNACK_CODES.get(connack[3], "unknown")
            raise MqttError(f"{client_id}: connection refused: {connack[3]} ({reason})")
        self.client_id = client_id

    # --- publishing ----------------------------------------------------------------------

    @staticmethod
    def topic(name: str) -> bytes:
        """A topic's wire form (length-prefixed); compute once per topic."""
        return mqtt_string(name)

    def add(self, topic: bytes, payload: bytes, tag: Hashable) -> None:
        """Queue a QoS 1 PUBLISH of ``payload`` to ``topic`` (from ``Publisher.topic``)."""
        if len(self._pending) >= self.max_inflight:
            self.flush()
            deadline = time.monotonic() + self.timeout
            while len(self._pending) >= self.max_inflight:
                self._wait_acks(deadline)
        pid = self._next_id
        while True:  # 1..65535, skipping ids still unacknowledged
            pid = pid % 65535 + 1
            if pid not in self._pending:
                break
        self._next_id = pid
        self._pending[pid] = tag
        length = len(topic) + 2 + len(payload)
        header = self._headers.get(length)
        if header is None:
            header = self._headers[length] = bytes([PUBLISH_QOS1]) + varint(length)
        self._chunk += (header, topic, self._ids[pid], payload)
        self._chunk_len += len(header) + length
        if self._chunk_len >= self.chunk_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the queued PUBLISHes, then read whatever acknowledgements arrived."""
        if self._chunk:
            self._write(b"".join(self._chunk))
            self._chunk.clear()
            self._chunk_len = 0
        self.poll(0.0)

    def _write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise MqttError(
                f"{self.client_id}: writing to the broker failed ({e}; "
                f"{len(self._pending)} PUBLISHes unacknowledged; see mosquitto.log)"
            ) from e
        self._last_write = time.monotonic()

    def wait_all(self) -> None:
        """Flush and wait until every PUBLISH is acknowledged (``timeout`` without any
        acknowledgement raises)."""
        self.flush()
        deadline = time.monotonic() + self.timeout
        while self._pending:
            self._wait_acks(deadline)

    def _wait_acks(self, deadline: float) -> None:
        before = len(self._pending)
        self.poll(max(0.0, min(1.0, deadline - time.monotonic())))
        if len(self._pending) < before:
            return
        if time.monotonic() > deadline:
            raise MqttError(
                f"{self.client_id}: no PUBACK for {self.timeout:g} s "
                f"({len(self._pending)} PUBLISHes unacknowledged)"
            )

    def take_acked(self) -> dict[Hashable, int]:
        """Messages acknowledged per tag since the last call."""
        acked, self._acked = self._acked, {}
        return acked

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    # --- reading -------------------------------------------------------------------------

    def poll(self, timeout: float) -> None:
        """Read and handle what the broker sent, waiting up to ``timeout`` s for it."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return
        try:
            data = self.sock.recv(65536)
        except OSError as e:
            raise MqttError(f"{self.client_id}: reading from the broker failed ({e})") from e
        if not data:
            raise MqttError(
                f"{self.client_id}: the broker closed the connection "
                f"({len(self._pending)} PUBLISHes unacknowledged; see mosquitto.log)"
            )
        self._handle(self._rx + data if self._rx else data)

    def _handle(self, buf: bytes) -> None:
        pending, acked = self._pending, self._acked
        pos, end = 0, len(buf)
        while end - pos >= 2:
            kind = buf[pos]
            if kind == PUBACK and buf[pos + 1] == 2:  # the common case: 40 02 id id
                if end - pos < 4:
                    break
                pid = (buf[pos + 2] << 8) | buf[pos + 3]
                try:
                    tag = pending.pop(pid)
                except KeyError:
                    raise MqttError(f"{self.client_id}: PUBACK for unknown id {pid}") from None
                acked[tag] = acked.get(tag, 0) + 1
                pos += 4
                continue
            length, shift, i = 0, 0, pos + 1
            while True:
                if i >= end:
                    self._rx = buf[pos:]
                    return
                digit = buf[i]
                length |= (digit & 0x7F) << shift
                shift += 7
                i += 1
                if not digit & 0x80:
                    break
            if i + length > end:
                break
            if kind != PINGRESP:
                raise MqttError(f"{self.client_id}: unexpected packet type 0x{kind:02x}")
            pos = i + length
        self._rx = buf[pos:]

    # --- connection ----------------------------------------------------------------------

    def keepalive(self, idle_s: float = 20.0) -> None:
        """Call while otherwise idle: sends PINGREQ after ``idle_s`` s without a write
        (the broker drops a client silent for 1.5 keepalives) and reads any replies."""
        if time.monotonic() - self._last_write > idle_s:
            self._write(PINGREQ)
        self.poll(0.0)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(DISCONNECT)
        self.sock.close()
