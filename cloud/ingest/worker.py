"""The ingest worker: MQTT (shared subscription, manual acks) -> validation -> store.

Threads, each doing one thing:

- the *network* thread runs paho's loop (``Client.loop``, with its own reconnect and
  backoff) and, between two turns of it, has the messages that arrived decoded and
  checked (:mod:`cloud.ingest.handling`: validation, trust, seq, line protocol) and
  gathers them into chunks by
  size (``batch_size`` readings) or time (``batch_time_s``). It also sends the PUBACKs
  the writers queue. Handing every message and every PUBACK from one thread to another
  cost as much CPU as paho itself (GIL hand-offs and a socketpair wake-up per ack);
- ``writers`` *writer* threads each write the oldest pending chunk to the store (two
  writes in flight let influxd use a second core); after a write, whichever writer
  finds written chunks at the head of the queue queues their PUBACKs in the order the
  messages arrived, records their seqs and hands the batches on (:meth:`_hand_off`,
  the one place where stored batches leave for detection). A killed
  worker therefore loses nothing: the broker redelivers every message it has not
  acknowledged, and writes are idempotent;
- *housekeeping* writes the registry through to the database and, in a shared group,
  settles the seq ledger (``cloud.seq_ledger``), so that a slow database never holds
  the acknowledgements back;
- *callbacks* runs ``on_batch`` (detection) off the write path.

When the store is down the writer keeps its chunk and retries with jittered
exponential backoff; the network thread keeps filling chunks until ``buffer_readings``
are held, then leaves new messages undecoded in the inbox. Nothing is acknowledged
meanwhile, so the broker stops sending once ``receive_maximum`` messages are
unacknowledged and queues the rest (backpressure all the way to the broker's
``max_queued_messages``). When the store comes back, the chunks are written in order,
without a restart.

A payload that fails validation (or that the store refuses as malformed) is published to
``akita/v1/deadletter/<gateway>`` with the reason and acknowledged: it can never succeed,
and holding it would block the stream.

Trust rules and dead letters for what fails them: :mod:`cloud.ingest.handling`.
"""

from __future__ import annotations

import logging
import random
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud.detect import handoff
from cloud.errors import StoreError
from cloud.ingest.encode import Encoder
from cloud.ingest.handling import Entry, MessageHandler
from cloud.ingest.late import LATE_MS, LateAggregates, Reaggregating
from cloud.ingest.settings import IngestSettings
from cloud.ingest.socket_read import read_waiting
from cloud.metrics import Metrics
from cloud.registry import Registry
from cloud.seq_accounting import SeqVerdict
from cloud.store.base import TimeSeriesStore
from schemas import Batch, DeviceKind, topics

log = logging.getLogger(__name__)

BatchCallback = Callable[[Batch], None]
# (batch, reset): every stored batch, repeats included; reset: its seq restarted the
# gateway's counter. For a consumer that puts batches in seq order itself (the tier).
StoredCallback = Callable[[Batch, bool], None]
MAX_PENDING_CALLBACKS = 5000  # batches stored but not yet through on_batch
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 2.0  # a local connection attempt costs nothing
NO_MATCHING_SUBSCRIBERS = 0x10  # MQTT 5 PUBACK: accepted, but nobody was subscribed


@dataclass(frozen=True)
class IngestHealth:
    """What ``/health`` reports about one worker."""

    broker_connected: bool
    store_ok: bool
    store_error: str | None
    store_down_since: datetime | None
    backpressure: bool
    buffer_depth: int
    buffer_limit: int
    points_per_s: float
    lag_s: float | None
    last_write_at: datetime | None
    dead_letters: int
    gaps: int
    duplicates: int

    @property
    def ok(self) -> bool:
        return self.broker_connected and self.store_ok


@dataclass
class _Chunk:
    entries: list[Entry] = field(default_factory=list)
    readings: int = 0
    points: int = 0
    deadline: float = 0.0
    state: str = "pending"  # pending -> writing -> written (or back to pending on stop)


class IngestWorker:
    """One ingest worker; run several (processes) on the same ``group`` to scale out."""

    def __init__(
        self,
        settings: IngestSettings,
        store: TimeSeriesStore,
        registry: Registry,
        *,
        metrics: Metrics | None = None,
        on_batch: BatchCallback | None = None,
        on_stored: StoredCallback | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        # unix seconds; the simulator's clock in the demo, so accelerated scenarios are
        # not refused as "in the future"
        self._now = clock
        self.store = store
        self.registry = registry
        self.metrics = metrics or Metrics()
        self.on_batch = on_batch
        self.on_stored = on_stored
        self.encoder = Encoder(registry)
        self._fast = callable(getattr(store, "write_lines", None))
        # a store with downsampled aggregates: recompute them for late readings
        self._late = (
            LateAggregates(store, [k.value for k in DeviceKind])
            if isinstance(store, Reaggregating)
            else None
        )

        # both touched by the network thread only (paho calls on_message from it)
        self._inbox: deque[mqtt.MQTTMessage] = deque()
        self._chunk = _Chunk()
        self._held = False  # the current chunk is full and the writers have no room
        # (mid, qos) written and due a PUBACK, in arrival order; sent by the network thread
        self._acks: deque[tuple[int, int]] = deque()
        self._chunks: deque[_Chunk] = deque()
        self._chunks_cv = threading.Condition()
        self._buffered = 0  # readings in chunks waiting for the writer
        self._callbacks: deque[tuple[Batch, bool]] = deque()
        self._callbacks_cv = threading.Condition()

        self._stopping = threading.Event()
        self._processor_done = threading.Event()
        self._network_stop = threading.Event()
        self._network: threading.Thread | None = None
        self._writer_done = threading.Event()
        self._writers_running = 0
        self._complete_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._connected = False
        self._subscribed = threading.Event()
        self._store_ok = True
        self._store_error: str | None = None
        self._store_down_since: datetime | None = None
        self._last_write: datetime | None = None
        self._gaps = 0
        self._duplicates = 0
        self.handler = MessageHandler(
            settings,
            registry,
            self.encoder,
            self.metrics,
            fast=self._fast,
            detailed=on_batch is not None or on_stored is not None or settings.handoff,
            now=clock,
            publish=self._publish_qos1,
        )
        # in a shared group this worker sees part of each gateway's seqs: gaps are settled
        # through the relational store by every worker's sweeps (cloud.registry)
        self._shared_seqs = settings.group is not None and registry.share_seqs()
        self._next_sweep = 0.0
        # PUBACKs that were not a plain success, by mid (hand-offs check theirs)
        self._puback_failures: dict[int, str] = {}
        self._handoff_logged: dict[tuple[str, str], float] = {}
        if settings.group is not None and not self._shared_seqs:
            log.warning(
                "seq_gaps_per_worker worker=%s group=%s reason=no registry database: gap "
                "counts are exact only while this worker is alone in its group (give --db)",
                settings.name,
                settings.group,
            )
        # self-metrics of the current interval
        self._interval_start = time.monotonic()
        self._interval_readings = 0
        self._interval_lags: list[float] = []
        self._points_per_s = 0.0
        self._lag_s: float | None = None

        self.client = self._make_client()

    # --- life cycle ---------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=mqtt.MQTTv5 if s.mqtt_version == "5" else mqtt.MQTTv311,
            # 3.1.1: a persistent session so unacknowledged messages are redelivered
            clean_session=None if s.mqtt_version == "5" else False,
            manual_ack=True,
        )
        if s.username:
            client.username_pw_set(
                s.username, s.password.get_secret_value() if s.password else None
            )
        if s.tls:
            client.tls_set(
                ca_certs=str(s.ca_file) if s.ca_file else None,
                certfile=str(s.cert_file) if s.cert_file else None,
                keyfile=str(s.key_file) if s.key_file else None,
            )
            client.tls_insecure_set(s.tls_insecure)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        return client

    def start(self) -> None:
        """Connect (in the background, retrying) and start processing."""
        s = self.settings
        self._stopping.clear()
        self._processor_done.clear()
        self._writer_done.clear()
        # several writers keep influxd busy on every core while this process decodes;
        # a store without line protocol (SQLite) gets one
        writers = s.writers if self._fast else 1
        self._writers_running = writers
        self._network_stop.clear()
        self._chunk = _Chunk()
        for name, target in (
            *((f"ingest-writer-{i}", self._write_loop) for i in range(writers)),
            ("ingest-callbacks", self._callback_loop),
            ("ingest-housekeeping", self._housekeeping_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if s.mqtt_version == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = s.receive_maximum
            self.client.connect_async(
                s.broker_host, s.broker_port, s.keepalive_s, clean_start=False, properties=props
            )
        else:
            self.client.connect_async(s.broker_host, s.broker_port, s.keepalive_s)
        self._network = threading.Thread(
            target=self._network_loop, name="ingest-network", daemon=True
        )
        self._network.start()
        log.info(
            "ingest_start worker=%s broker=%s:%d group=%s",
            s.name,
            s.broker_host,
            s.broker_port,
            s.group,
        )

    def stop(self, timeout: float = 10.0, *, end_session: bool = False) -> None:
        """Stop taking messages, write and acknowledge what is held (within ``timeout``),
        disconnect. Anything not written stays unacknowledged and is redelivered.

        The broker keeps this worker's session, and keeps queueing its share of the
        group's messages until it comes back (what makes a restart lossless). To remove
        a worker for good, pass ``end_session=True``: it leaves the shared group, drains
        what the broker still sends it, and ends the session, so nothing waits for it.
        """
        if end_session and self._connected:
            self._leave_group(timeout)
        self._stopping.set()
        for cv in (self._chunks_cv, self._callbacks_cv):
            with cv:
                cv.notify_all()
        deadline = time.monotonic() + timeout
        # the network thread hands over its last chunk, then keeps sending the PUBACKs
        # of what the writers finish
        self._processor_done.wait(max(0.1, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self._threads.clear()
        while self._acks and self._connected and time.monotonic() < deadline:
            time.sleep(0.01)
        self.registry.flush()
        self._reaggregate()
        if self._late is not None and len(self._late):
            log.warning(
                "aggregates_not_recomputed worker=%s ranges=%d reason=store down; run "
                "`akita cloud reaggregate` for the late readings' time range",
                self.settings.name,
                len(self._late),
            )
        self._network_stop.set()  # before disconnecting: no reconnect after it
        if end_session and self.settings.mqtt_version == "5":
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
            self.client.disconnect(properties=props)
        else:
            self.client.disconnect()
        if self._network is not None:
            self._network.join(max(1.0, deadline - time.monotonic()))
            self._network = None
        log.info("ingest_stop worker=%s", self.settings.name)

    def _leave_group(self, timeout: float) -> None:
        self.client.unsubscribe(self._telemetry_filter())
        deadline = time.monotonic() + timeout
        received = self.metrics.value("akita_ingest_messages_total", result="stored")
        quiet_since = time.monotonic()
        # drain: wait until nothing is held and nothing new arrived for a second
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now_received = self.metrics.value("akita_ingest_messages_total", result="stored")
            if now_received != received or self.buffer_depth() or self._inbox:
                received, quiet_since = now_received, time.monotonic()
            elif time.monotonic() - quiet_since >= 1.0:
                break
        log.info("ingest_left_group worker=%s group=%s", self.settings.name, self.settings.group)

    def health(self) -> IngestHealth:
        depth = self.buffer_depth()
        return IngestHealth(
            broker_connected=self._connected,
            store_ok=self._store_ok,
            store_error=self._store_error,
            store_down_since=self._store_down_since,
            backpressure=self._buffered >= self.settings.buffer_readings,
            buffer_depth=depth,
            buffer_limit=self.settings.buffer_readings,
            points_per_s=self._points_per_s,
            lag_s=self._lag_s,
            last_write_at=self._last_write,
            dead_letters=self.handler.dead_letters,
            gaps=self._gaps,
            duplicates=self._duplicates,
        )

    def buffer_depth(self) -> int:
        """Readings (roughly: messages count as their readings once decoded) held in memory."""
        return self._buffered + len(self._inbox)

    # --- MQTT callbacks (network thread) ------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.warning("broker_connect_refused worker=%s reason=%s", self.settings.name, rc)
            return
        self._connected = True
        self.metrics.set("akita_ingest_broker_up", 1)
        log.info(
            "broker_connected worker=%s session_present=%s",
            self.settings.name,
            flags.session_present,
        )
        v5 = self.settings.mqtt_version == "5"
        q1: Any = SubscribeOptions(qos=1) if v5 else 1
        q0: Any = SubscribeOptions(qos=0) if v5 else 0
        client.subscribe(
            [
                (topics.subscription(topics.Channel.META), q1),
                (topics.subscription(topics.Channel.STATUS), q1),
                (topics.subscription(topics.Channel.HEALTH), q0),
                (self._telemetry_filter(), q1),
            ]
        )

    def _telemetry_filter(self) -> str:
        plain = topics.subscription(topics.Channel.TELEMETRY)
        return plain if self.settings.group is None else topics.shared(self.settings.group, plain)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        refused = [str(c) for c in codes if c.is_failure]
        if refused:
            log.error("subscribe_refused worker=%s reasons=%s", self.settings.name, refused)
            return
        self._subscribed.set()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        # network thread, before the message counts as published. A hand-off refused
        # (0x87: the account lacks akita/v1/_detect/#) or given to nobody (0x10: no
        # partition session subscribed yet) reached no detector
        if rc.is_failure or rc.value == NO_MATCHING_SUBSCRIBERS:
            if len(self._puback_failures) > 10_000:  # others' (dead letters): never read
                self._puback_failures.clear()
            self._puback_failures[mid] = str(rc)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Block until connected and subscribed (True), or ``timeout`` passes (False)."""
        return self._subscribed.wait(timeout)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._connected = False
        self._subscribed.clear()
        self.metrics.set("akita_ingest_broker_up", 0)
        if not self._stopping.is_set():
            log.warning("broker_disconnected worker=%s reason=%s", self.settings.name, rc)

    def _publish_qos1(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.append(msg)  # network thread; decoded after this turn of the loop

    # --- network thread -----------------------------------------------------------------

    def _network_loop(self) -> None:
        """paho's loop, reconnects with backoff, and the processing between its turns."""
        client = self.client
        # short backoff: a broker that restarts does not restore shared subscriptions
        # (Mosquitto 2.0.11), so what arrives before a worker is back is lost
        delay = RECONNECT_MIN_S
        need_connect = True
        failures = 0  # connection attempts refused in a row
        try:
            while not self._network_stop.is_set():
                try:
                    if need_connect:
                        client.reconnect()  # raises while the broker is unreachable
                        if failures:
                            log.info(
                                "broker_reachable worker=%s after_attempts=%d",
                                self.settings.name,
                                failures + 1,
                            )
                        need_connect, delay, failures = False, RECONNECT_MIN_S, 0
                    rc = client.loop(self._turn_timeout())
                    if rc == mqtt.MQTT_ERR_SUCCESS:
                        rc = self._read_more()
                    self._send_acks()
                    self._process_step()
                except (OSError, ValueError) as exc:  # refused, DNS, TLS
                    failures += 1
                    if failures == 1 or failures % 30 == 0:  # not one line per retry
                        log.warning(
                            "broker_unreachable worker=%s reason=%s attempts=%d retry_in_s=%.1f",
                            self.settings.name,
                            exc,
                            failures,
                            delay,
                        )
                    rc = mqtt.MQTT_ERR_NO_CONN
                except Exception:  # a bug in a callback must not end the ingest
                    log.exception("network_loop_error worker=%s", self.settings.name)
                    rc = mqtt.MQTT_ERR_UNKNOWN
                if rc != mqtt.MQTT_ERR_SUCCESS and not self._network_stop.is_set():
                    need_connect = True
                    self._connected = False
                    self._idle(delay)
                    delay = min(delay * 2, RECONNECT_MAX_S)
        finally:
            if not self._processor_done.is_set():
                self._finish_processing()

    def _read_more(self, most: int = 64) -> MQTTErrorCode:
        return read_waiting(self.client, self._inbox, most)

    def _turn_timeout(self) -> float:
        # zero while there is work; else short, so that acks the writers queue meanwhile
        # and a chunk's batch_time_s deadline are not late
        if self._acks or (self._inbox and not self._held):
            return 0.0
        if self._held:  # backpressure: the writers must free room first; do not spin
            return 0.005
        if self._chunk.entries:
            return max(0.0, min(0.02, self._chunk.deadline - time.monotonic()))
        return 0.02

    def _idle(self, seconds: float) -> None:
        """Wait, still sending acks and handing over chunks (the writers may need it)."""
        end = time.monotonic() + seconds
        while not self._network_stop.is_set() and time.monotonic() < end:
            self._process_step()
            time.sleep(0.05)

    def _send_acks(self) -> None:
        acks = self._acks
        while acks:
            mid, qos = acks[0]
            self.client.ack(mid, qos)  # written to the socket here, on this thread
            acks.popleft()  # after: stop() waits for an empty queue before disconnecting

    # --- processing (on the network thread) ---------------------------------------------

    def _process_step(self, limit: int = 256) -> None:
        """Decode up to ``limit`` waiting messages into the current chunk; hand the chunk
        to the writers when full or due. Under backpressure, leave messages waiting."""
        if self._processor_done.is_set():
            return
        if self._stopping.is_set():
            self._finish_processing()
            return
        chunk = self._chunk
        inbox = self._inbox
        size = self.settings.batch_size
        taken = 0
        self._held = False
        while inbox and taken < limit:
            if chunk.points >= size:
                if not self._hand_over(chunk):
                    self._held = True  # backpressure: the store is behind
                    break
                chunk = self._chunk = _Chunk()
            msg = inbox.popleft()
            taken += 1
            if not chunk.entries:
                chunk.deadline = time.monotonic() + self.settings.batch_time_s
            entry = self.handler.handle(msg.mid, msg.qos, msg.topic, bytes(msg.payload))
            chunk.entries.append(entry)
            chunk.readings += entry.readings
            chunk.points += len(entry.lines) + len(entry.points)
        self._maybe_self_metrics(chunk)
        due = chunk.points >= size or time.monotonic() >= chunk.deadline
        if chunk.entries and due:
            if self._hand_over(chunk):
                self._chunk = _Chunk()
            else:
                self._held = True

    def _finish_processing(self) -> None:
        """Stopping: hand over the chunk being filled; what is still in the inbox stays
        unacknowledged (redelivered)."""
        if self._chunk.entries:
            self._hand_over(self._chunk, force=True)
            self._chunk = _Chunk()
        self._processor_done.set()
        with self._chunks_cv:
            self._chunks_cv.notify_all()

    def _hand_over(self, chunk: _Chunk, *, force: bool = False) -> bool:
        """Queue ``chunk`` for the writers; False (not queued) while the store is behind."""
        with self._chunks_cv:
            if not force and self._buffered >= self.settings.buffer_readings and self._chunks:
                return False
            self._chunks.append(chunk)
            self._buffered += chunk.points
            self._chunks_cv.notify_all()
        self.metrics.set("akita_ingest_buffer_depth", self.buffer_depth())
        return True

    def _maybe_self_metrics(self, chunk: _Chunk) -> None:
        now = time.monotonic()
        elapsed = now - self._interval_start
        if elapsed < self.settings.self_metrics_interval_s:
            return
        self._points_per_s = self._interval_readings / elapsed
        self._lag_s = statistics.median(self._interval_lags) if self._interval_lags else None
        self._interval_start = now
        self._interval_readings = 0
        self._interval_lags = []
        self.metrics.set("akita_ingest_points_per_second", self._points_per_s)
        if self._lag_s is not None:
            self.metrics.set("akita_ingest_lag_seconds", self._lag_s)
        fields: dict[str, float | int | bool | str] = {
            "points_per_s": float(self._points_per_s),
            "dead_letters": self.handler.dead_letters,
            "gaps": self._gaps,
            "duplicates": self._duplicates,
            "buffer_depth": self.buffer_depth(),
        }
        if self._lag_s is not None:
            fields["lag_s"] = float(self._lag_s)
        point = self.encoder.self_point(self.settings.name, fields, datetime.now(UTC))
        entry = Entry(0, 0, "", None, b"")
        self.handler.add_point(entry, point)
        if not chunk.entries:
            chunk.deadline = now + self.settings.batch_time_s
        chunk.entries.append(entry)
        chunk.points += 1

    # --- writer -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        """One of ``settings.writers`` threads: write the oldest pending chunk, then
        acknowledge whatever is written at the head of the queue, in arrival order."""
        try:
            while True:
                with self._chunks_cv:
                    chunk = self._next_pending()
                    while chunk is None:
                        if self._processor_done.is_set():
                            return
                        self._chunks_cv.wait(0.5)
                        chunk = self._next_pending()
                    chunk.state = "writing"
                written = self._write_chunk(chunk)
                with self._chunks_cv:
                    chunk.state = "written" if written else "pending"
                if not written:
                    return  # stopping with the store down: leave it unacknowledged
                self._complete_in_order()
        finally:
            with self._chunks_cv:
                self._writers_running -= 1
                last = self._writers_running == 0
            if last:
                self._writer_done.set()
                with self._callbacks_cv:
                    self._callbacks_cv.notify_all()

    def _next_pending(self) -> _Chunk | None:
        return next((c for c in self._chunks if c.state == "pending"), None)

    def _complete_in_order(self) -> None:
        """Acknowledge written chunks from the head of the queue. MQTT wants PUBACKs in
        the order the PUBLISHes came; a chunk written early waits for those before it."""
        with self._complete_lock:
            while True:
                with self._chunks_cv:
                    if not self._chunks or self._chunks[0].state != "written":
                        return
                    chunk = self._chunks.popleft()
                    self._buffered -= chunk.points
                    self._chunks_cv.notify_all()
                self._complete(chunk)

    def _write_chunk(self, chunk: _Chunk) -> bool:
        """Write until stored (True) or stopping (False). Malformed entries dead-lettered."""
        delay = self.settings.retry_initial_s
        while True:
            try:
                started = time.perf_counter()
                self._store_write(chunk.entries)
                self.metrics.observe(
                    "akita_ingest_batch_write_seconds", time.perf_counter() - started
                )
                self._mark_store(ok=True)
                return True
            except StoreError as exc:
                self.metrics.inc("akita_ingest_store_errors_total", retryable=str(exc.retryable))
                if not exc.retryable:
                    if not self._write_one_by_one(chunk):
                        return False
                    self._mark_store(ok=True)
                    return True
                self._mark_store(ok=False, error=str(exc))
            if self._stopping.wait(delay * random.uniform(0.5, 1.5)):
                return False
            delay = min(delay * 2, self.settings.retry_max_s)

    def _write_one_by_one(self, chunk: _Chunk) -> bool:
        """After a non-retryable error: find the entries the store refuses, dead-letter them."""
        delay = self.settings.retry_initial_s
        for entry in chunk.entries:
            while entry.lines or entry.points:
                try:
                    self._store_write([entry])
                    break
                except StoreError as exc:
                    if not exc.retryable:
                        self.handler.dead_letter(entry, f"store refused the readings: {exc}")
                        break
                    self._mark_store(ok=False, error=str(exc))
                    if self._stopping.wait(delay * random.uniform(0.5, 1.5)):
                        return False
                    delay = min(delay * 2, self.settings.retry_max_s)
        return True

    def _store_write(self, entries: list[Entry]) -> None:
        if self._fast:
            body = b"\n".join(list(chain.from_iterable(e.lines for e in entries)))
            if body:
                self.store.write_lines(body)  # type: ignore[attr-defined]
        else:
            points = [p for e in entries for p in e.points]
            if points:
                self.store.write(points)

    def _mark_store(self, *, ok: bool, error: str | None = None) -> None:
        if ok and not self._store_ok:
            log.info(
                "store_recovered worker=%s down_since=%s",
                self.settings.name,
                self._store_down_since,
            )
            if self._late is not None and self._store_down_since is not None:
                # continuous-query passes failed meanwhile (influxd's clock: real time)
                down_ms = int(self._store_down_since.timestamp() * 1000)
                self._late.note_outage(down_ms, int(time.time() * 1000))
        if not ok and self._store_ok:
            self._store_down_since = datetime.now(UTC)
            log.warning("store_down worker=%s reason=%s", self.settings.name, error)
        self._store_ok = ok
        self._store_error = None if ok else error
        if ok:
            self._store_down_since = None
            self._last_write = datetime.now(UTC)
        self.metrics.set("akita_ingest_store_up", 1 if ok else 0)

    def _complete(self, chunk: _Chunk) -> None:
        """After the durable write: acknowledge in arrival order, record seqs, notify."""
        readings = 0
        now_ms = self._now() * 1000
        batches: list[Batch] = []
        resets: set[int] = set()  # ids of batches whose seq restarted a gateway's counter
        acks = [(e.mid, e.qos) for e in chunk.entries if e.qos > 0]
        for entry in chunk.entries:
            batch = entry.batch
            if batch is None:
                continue
            check = entry.seq_check
            if check is not None:
                if check.verdict is SeqVerdict.DUPLICATE:
                    self._duplicates += 1
                    self.metrics.inc("akita_ingest_duplicates_total")
                    self.metrics.inc("akita_ingest_messages_total", result="duplicate")
                    if self.settings.handoff or self.on_stored is not None:
                        batches.append(batch)  # the tier drops repeats by seq itself
                    continue
                if check.verdict is SeqVerdict.RESET:
                    resets.add(id(batch))
                if check.missing:
                    self._gaps += check.missing
                    self.metrics.inc("akita_ingest_seq_gaps_total", check.missing)
                if self._shared_seqs:
                    self.registry.record_seq(batch.gateway_id, batch.seq)
            for status in batch.statuses:
                self.registry.apply_device_status(batch.gateway_id, status)
            self.metrics.inc("akita_ingest_messages_total", result="stored")
            readings += entry.readings
            if entry.first_ts_ms is not None:
                self._interval_lags.append((now_ms - entry.first_ts_ms) / 1000)
            if (
                self._late is not None
                and entry.oldest_ts_ms is not None
                and now_ms - entry.oldest_ts_ms > LATE_MS
            ):
                self._late.note_batch(batch)
            batches.append(batch)
        self._interval_readings += readings
        self.metrics.inc("akita_ingest_readings_total", readings)
        self.metrics.set("akita_ingest_buffer_depth", self.buffer_depth())
        if self._hand_off(batches, resets):
            self._acks.extend(acks)  # sent by the network thread

    def _hand_off(self, batches: list[Batch], resets: set[int]) -> bool:
        """The post-write hand-off: batches now durably stored go to detection, in the
        order their messages arrived. With ``handoff`` (the detector tier) they are
        published by partition and confirmed by the broker before the originals are
        acknowledged (False: stopping first; nothing is acknowledged, all is redelivered).
        Else ``on_stored`` (repeats included) or ``on_batch`` (a repeat never gets there)
        runs them on the callbacks thread.
        """
        if self.settings.handoff:
            return self._publish_handoffs(batches, resets)
        if not batches or (self.on_batch is None and self.on_stored is None):
            return True
        with self._callbacks_cv:
            # slow detectors hold the writer (and so the acks) rather than memory
            while len(self._callbacks) > MAX_PENDING_CALLBACKS and not self._stopping.is_set():
                self._callbacks_cv.wait(0.5)
            self._callbacks.extend((b, id(b) in resets) for b in batches)
            self._callbacks_cv.notify_all()
        return True

    def _publish_handoffs(self, batches: list[Batch], resets: set[int]) -> bool:
        partitions = self.settings.detect_partitions
        stored_at = time.time()
        sent: list[tuple[str, mqtt.MQTTMessageInfo]] = []
        for batch in batches:
            owned = self.registry.owned(batch.gateway_id)
            for p, readings in handoff.split(batch, partitions, owned).items():
                payload = handoff.encode(
                    batch, readings, reset=id(batch) in resets, stored_at=stored_at
                )
                topic = handoff.topic(p)
                sent.append((topic, self.client.publish(topic, payload, qos=1)))
        for _topic, info in sent:
            # the network thread reads the broker's PUBACKs (paho re-sends after a reconnect)
            while not info.is_published():
                if self._stopping.is_set() and not self._connected:
                    return False
                try:
                    info.wait_for_publish(0.5)
                except (RuntimeError, ValueError):  # not connected now: queued, wait
                    time.sleep(0.1)
        self.metrics.inc("akita_ingest_handoffs_total", len(sent))
        for topic, info in sent:
            reason = self._puback_failures.pop(info.mid, None)
            if reason is not None:
                self._handoff_lost(topic, reason)
        return True

    def _handoff_lost(self, topic: str, reason: str) -> None:
        """Say loudly (once a minute per topic and reason) that stored readings reached no
        detector: a broker role not updated (make-roles.sh), or a partition whose session
        was never made (start `akita cloud detect` once before the ingest hands off)."""
        self.metrics.inc("akita_ingest_handoffs_lost_total", reason=reason)
        now = time.monotonic()
        if now - self._handoff_logged.get((topic, reason), -60.0) < 60.0:
            return
        self._handoff_logged[(topic, reason)] = now
        log.error(
            "handoff_lost worker=%s topic=%s reason=%s (broker account or partition session)",
            self.settings.name,
            topic,
            reason,
        )

    def _housekeeping_loop(self) -> None:
        """Registry write-through and the seq sweep, every 2 s, off the write path: a
        slow database must not hold the acknowledgements (and so the stream) back."""
        while not self._stopping.wait(2.0):
            try:
                self.registry.flush()
                self.registry.refresh()  # provisioning changed elsewhere: reload (no restart)
                self._sweep_seqs()
                self._reaggregate()
            except Exception:  # the next round retries; ingest goes on
                log.exception("housekeeping_error worker=%s", self.settings.name)

    def _reaggregate(self) -> None:
        """Recompute the aggregates of minutes that got late readings (store up only)."""
        if self._late is not None and self._store_ok:
            done = self._late.run()
            if done:
                self.metrics.inc("akita_ingest_reaggregations_total", done)

    def _sweep_seqs(self) -> None:
        """Shared group: settle the seq ledger now and then (every worker tries; one sweep
        wins per gateway) and count the gaps and duplicates this worker's sweeps found."""
        if not self._shared_seqs or time.monotonic() < self._next_sweep:
            return
        # jittered, so that workers started together do not all sweep at the same moment
        self._next_sweep = time.monotonic() + self.settings.seq_sweep_s * random.uniform(0.8, 1.2)
        for settled in self.registry.sweep_seqs(self.settings.seq_grace_s):
            if settled.missing:
                self._gaps += settled.missing
                self.metrics.inc("akita_ingest_seq_gaps_total", settled.missing)
            if settled.duplicates:
                self._duplicates += settled.duplicates
                self.metrics.inc("akita_ingest_duplicates_total", settled.duplicates)

    # --- on_batch -----------------------------------------------------------------------

    def _callback_loop(self) -> None:
        while True:
            with self._callbacks_cv:
                while not self._callbacks:
                    if self._writer_done.is_set():
                        return
                    self._callbacks_cv.wait(0.5)
                batch, reset = self._callbacks.popleft()
                self._callbacks_cv.notify_all()
            try:
                if self.on_stored is not None:
                    self.on_stored(batch, reset)
                elif self.on_batch is not None:
                    self.on_batch(batch)
            except Exception:  # detection must not stop ingest: log and go on
                log.exception("on_batch_error gateway=%s seq=%d", batch.gateway_id, batch.seq)
