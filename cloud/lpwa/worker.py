"""The LPWA worker: a network server's integration events (MQTT) -> readings -> store.

One thread runs paho's loop and, between its turns, handles what arrived
(:mod:`cloud.lpwa.handling`) and gathers the lines in chunks; a writer thread posts one
chunk at a time while the network thread reads and handles the next. A message is
acknowledged only after its chunk is written (manual acks, MQTT 5, a persistent
session), so a killed worker loses nothing: the broker redelivers, and the writes are
idempotent (a reading's key is the meter and its hour). While the store is down nothing
is acknowledged, the broker stops sending at ``receive_maximum`` and queues the rest. A
refused message is published to ``akita/v1/deadletter/<network server>`` with its reason
and acknowledged (it can never succeed); a flagged one is stored *and* published there,
its reason starting with ``flagged``.
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.errors import StoreError
from cloud.ingest.socket_read import read_waiting
from cloud.lpwa import chirpstack
from cloud.lpwa.handling import Handler, Outcome
from cloud.registry import Registry
from schemas import DeadLetter, topics

log = logging.getLogger(__name__)
# (device, kind, hour end, values) of every new reading, after it is stored
ReadingsCallback = Callable[[list[tuple[str, str, datetime, Any]]], None]
TICK_S = 1.0  # how often on_tick runs: silence is judged in days, a second is plenty
READ_MOST = 1000  # messages read from the socket per turn of the loop, at most
REFRESH_S = 2.0  # how often the registry is re-read when another process changed it


class Received(NamedTuple):
    """What the worker keeps of a message until it is acknowledged. Not paho's
    ``MQTTMessage``: each holds a ``Properties`` object of several dicts and a
    ``Condition``; a thousand of them waiting made the garbage collector's passes cost
    more than the handling."""

    topic: str
    payload: bytes
    mid: int


class _Chunk:
    """Lines handed to the writer thread; ``acks``: how many of the worker's oldest
    unacknowledged messages the chunk holds."""

    def __init__(self, lines: list[bytes], acks: int,
                 readings: list[tuple[str, str, datetime, Any]]) -> None:  # fmt: skip
        self.lines, self.acks, self.readings = lines, acks, readings
        self.error: StoreError | None = None
        self.done = threading.Event()


class _LeanClient(mqtt.Client):
    """paho's client with a lean path for the one kind of message the worker gets by
    the ten thousand: a QoS 1 PUBLISH without properties, under MQTT 5 with manual acks.
    For each, paho builds an ``MQTTMessage`` with a ``Condition``, a ``Properties``
    object of several dicts, and formats a debug log call: about 40 % of the worker's
    CPU per message. Here the topic, payload and packet id come straight from the
    packet paho has read and go to ``deliver``. Anything else (QoS 0 or 2, properties,
    a topic that is not UTF-8, a packet this does not parse, no ``deliver``) takes
    paho's own ``_handle_publish``, which calls ``on_message`` as usual. Relies on paho
    2.x internals (``_in_packet``, ``_handle_publish``); ``tests/cloud/lpwa/
    test_worker.py`` checks it against paho's path packet by packet."""

    deliver: Callable[[Received], None] | None = None

    def _handle_publish(self) -> MQTTErrorCode:
        deliver = self.deliver
        try:
            header = self._in_packet["command"]
            packet = self._in_packet["packet"]
            if (deliver is None or header & 0x06 != 0x02 or self._protocol != mqtt.MQTTv5
                    or not self._manual_ack):  # fmt: skip
                return super()._handle_publish()
            end = 2 + (packet[0] << 8 | packet[1])  # topic length, then the topic
            if packet[end + 2] != 0:  # after the packet id: properties' length, not 0
                return super()._handle_publish()
            topic = packet[2:end].decode()
            mid = packet[end] << 8 | packet[end + 1]
            payload = bytes(packet[end + 3 :])
        except (KeyError, IndexError, TypeError, UnicodeDecodeError):
            return super()._handle_publish()  # paho names what is wrong
        deliver(Received(topic, payload, mid))
        return MQTTErrorCode.MQTT_ERR_SUCCESS


@dataclass(frozen=True)
class LpwaSettings:
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    username: str | None = None  # akita-lpwa-N on the shipped broker; also the client id
    password: str | None = None
    client_id: str = "akita-lpwa-1"
    batch_lines: int = 5000
    batch_time_s: float = 0.2
    receive_maximum: int = 20_000
    session_expiry_s: int = 86_400


class LpwaWorker:
    def __init__(self, settings: LpwaSettings, store: Any, registry: Registry,
                 on_readings: ReadingsCallback | None = None,
                 on_tick: Callable[[], None] | None = None) -> None:  # fmt: skip
        if not hasattr(store, "write_lines"):
            raise TypeError("the LPWA worker writes line protocol: give it an InfluxDB store")
        self.settings, self.store, self.registry = settings, store, registry
        # values models per stored hour only for the detection hook (the lines need none)
        self.handler = Handler(registry, readings=on_readings is not None)
        self.on_readings = on_readings
        # on the network thread, between batches: detection needs no lock of its own
        self.on_tick = on_tick
        self._tick_at = 0.0
        self.counts: dict[str, int] = {}
        self._inbox: list[Received] = []
        self._lines: list[bytes] = []
        self._readings: list[tuple[str, str, datetime, Any]] = []
        self._acks: list[int] = []  # every message not acknowledged yet, in arrival order
        self._writing: _Chunk | None = None  # the chunk the writer thread is posting
        self._to_write: queue.SimpleQueue[_Chunk | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._refresher: threading.Thread | None = None
        self._first_at = 0.0
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = _LeanClient(CallbackAPIVersion.VERSION2, client_id=s.username or s.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)  # fmt: skip
        if s.username:
            client.username_pw_set(s.username, s.password)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_a: self._ready.set()
        client.on_message = self._on_message
        client.deliver = self._receive
        return client

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.append(Received(msg.topic, bytes(msg.payload), msg.mid))

    def _receive(self, msg: Received) -> None:  # _LeanClient's path
        self._inbox.append(msg)

    def start(self) -> None:
        s = self.settings
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry_s
        props.ReceiveMaximum = s.receive_maximum
        self.client.connect(s.broker_host, s.broker_port, 30, clean_start=False, properties=props)
        self._writer = threading.Thread(target=self._write_loop, name="lpwa-writer", daemon=True)
        self._writer.start()
        self._refresher = threading.Thread(target=self._refresh_loop, name="lpwa-registry",
                                           daemon=True)  # fmt: skip
        self._refresher.start()
        self._thread = threading.Thread(target=self._run, name="lpwa-network", daemon=True)
        self._thread.start()
        log.info("lpwa_start client=%s broker=%s:%d", self.client._client_id.decode(),
                 s.broker_host, s.broker_port)  # fmt: skip

    def wait_ready(self, timeout: float = 10.0) -> bool:
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Write and acknowledge what is held, then disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._to_write.put(None)
        for thread in (self._writer, self._refresher):
            if thread is not None:
                thread.join(timeout)
        self.client.disconnect()

    def _refresh_loop(self) -> None:
        """Provisioning done elsewhere (``akita cloud device add``, a meter moved to
        another network server) reaches this worker within REFRESH_S, without a
        restart: the registry reloads when its version row moved (as the gateway
        ingest's housekeeping). Off the network thread: a slow database must not hold
        the stream back. The handler's cached line prefixes follow the registry's
        version."""
        while not self._stop.wait(REFRESH_S):
            try:
                self.registry.refresh()
            except Exception:  # the next round retries; ingest goes on
                log.exception("lpwa_registry_refresh_failed")

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("lpwa_connect_refused reason=%s", rc)
            return
        client.subscribe(chirpstack.SUBSCRIPTION, qos=1)

    def _run(self) -> None:
        client = self.client
        while not self._stop.is_set():
            # a chunk being written: look back soon to acknowledge it (no message may come:
            # the broker stops at receive_maximum unacknowledged)
            rc = client.loop(0.05 if self._writing is None else 0.005)
            if rc == mqtt.MQTT_ERR_SUCCESS:
                rc = self._read_more()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                log.warning("lpwa_broker_lost reason=%s", rc)
                time.sleep(0.5)
                try:
                    client.reconnect()
                except OSError as exc:
                    log.warning("lpwa_broker_unreachable reason=%s", exc)
                continue
            self._process()
            self._tick()
        self._drain()

    def _drain(self, timeout: float = 10.0) -> None:
        """On stop: write and acknowledge what is held (one try per chunk: what fails
        stays unacknowledged, and the broker redelivers it)."""
        end = time.monotonic() + timeout
        self._process(force=True)
        while self._writing is not None:
            chunk = self._writing
            if not chunk.done.wait(max(0.0, end - time.monotonic())):
                break  # still writing: it stays unacknowledged
            # acknowledges it and hands over what is left (none after a failure: the
            # retry waits, and the broker redelivers)
            self._flush(force=True)

    def _read_more(self) -> MQTTErrorCode:
        return read_waiting(self.client, self._inbox, READ_MOST)

    def _tick(self) -> None:
        if self.on_tick is None or time.monotonic() < self._tick_at:
            return
        self._tick_at = time.monotonic() + TICK_S
        try:
            self.on_tick()
        except Exception:  # a failed tick must not stop the ingest; say why, retry later
            log.exception("lpwa_tick_failed")

    def _process(self, *, force: bool = False) -> None:
        inbox, self._inbox = self._inbox, []
        now = datetime.now(UTC)
        for msg in inbox:
            self._take(msg, self.handler.handle(msg.topic, msg.payload, now))
        self._flush(force=force)

    def _take(self, msg: Received, out: Outcome) -> None:
        self.counts[out.verdict] = self.counts.get(out.verdict, 0) + 1
        if out.dead is not None:
            self._dead_letter(msg, out.dead)
        elif out.flag is not None:
            self._dead_letter(msg, f"flagged (stored): {out.flag}")
        if out.lines and not self._lines:
            self._first_at = time.monotonic()
        self._lines.extend(out.lines)
        self._readings.extend(out.readings)
        self._acks.append(msg.mid)

    def _flush(self, *, force: bool = False) -> None:
        """Acknowledge a written chunk; hand the next one to the writer when it is full,
        old or forced; acknowledge at once what has nothing to write (duplicates,
        dead letters) when nothing is waiting to be written before it."""
        chunk = self._writing
        if chunk is not None:
            if not chunk.done.is_set():
                return
            self._writing = None
            if chunk.error is not None:
                # hold the acks: nothing is lost, the broker stops sending at its limit
                log.warning("lpwa_store_write_failed lines=%d reason=%s", len(chunk.lines),
                            chunk.error)  # fmt: skip
                self._retry_at = time.monotonic() + 1.0
                self._lines[:0] = chunk.lines  # written again with the next chunk
                self._readings[:0] = chunk.readings
                self._first_at = time.monotonic() - self.settings.batch_time_s
            else:
                ack_all(self.client, self._acks[: chunk.acks])
                del self._acks[: chunk.acks]
                self.counts["lines"] = self.counts.get("lines", 0) + len(chunk.lines)
                if chunk.readings and self.on_readings is not None:
                    self.on_readings(chunk.readings)
        if not self._lines:
            if self._acks:
                ack_all(self.client, self._acks)
                self._acks = []
            return
        s = self.settings
        now = time.monotonic()
        due = force or len(self._lines) >= s.batch_lines or now - self._first_at >= s.batch_time_s
        if due and now >= self._retry_at:
            self._writing = _Chunk(self._lines, len(self._acks), self._readings)
            self._lines, self._readings = [], []
            self._to_write.put(self._writing)

    def _write_loop(self) -> None:
        """The writer thread: post each chunk handed over; the network thread acks it."""
        while True:
            chunk = self._to_write.get()
            if chunk is None:
                return
            try:
                self.store.write_lines(b"\n".join(chunk.lines))
            except StoreError as exc:
                chunk.error = exc
            except Exception as exc:  # a bug must not leave the chunk unfinished forever
                log.exception("lpwa_writer_failed")
                chunk.error = StoreError(f"writer: {exc!r}", retryable=True)
            finally:
                chunk.done.set()

    def _dead_letter(self, msg: Received, reason: str) -> None:
        record = DeadLetter(received_at=datetime.now(UTC), topic=msg.topic[:300],
                            reason=reason[:2000], payload_excerpt=repr(msg.payload[:400])[:600],
                            payload_size=len(msg.payload))  # fmt: skip
        parts = msg.topic.split("/")
        ns = parts[1] if len(parts) > 1 and parts[0] == chirpstack.PREFIX else None
        try:
            dl_topic = topics.deadletter(ns)
        except ValueError:
            dl_topic = topics.deadletter(None)
        self.client.publish(dl_topic, record.model_dump_json().encode(), qos=1)
        log.warning("lpwa_dead_letter topic=%s reason=%r", msg.topic[:200], reason[:300])


def puback_packets(mids: list[int]) -> bytes:
    """The PUBACKs (success, no properties: 4 bytes each, MQTT 3.1.1 and 5) of ``mids``,
    as ``Client.ack`` writes them one by one: 0x40, remaining length 2, the packet id."""
    return struct.pack(f">{len(mids)}I", *[0x4002_0000 | mid for mid in mids])


def ack_all(client: mqtt.Client, mids: list[int]) -> None:
    """Acknowledge QoS 1 messages (manual acks) in one write. ``Client.ack`` queues one
    packet per message and, outside paho's own thread, sends each at once (two
    syscalls per message); here they go as one packet through paho's queue, after
    whatever it has queued before. Falls back to ``Client.ack`` if paho has no
    ``_packet_queue`` (its private API; ``tests/cloud/lpwa/test_worker.py`` checks the
    bytes against paho's own acks)."""
    enqueue = getattr(client, "_packet_queue", None)
    if enqueue is None:
        for mid in mids:
            client.ack(mid, 1)
    elif mids:
        enqueue(mqtt.PUBACK, puback_packets(mids), 0, 0)
