"""The ingest worker: MQTT (shared subscription, manual acks) -> validation -> store.

Threads, each doing one thing:

- the *network* thread runs paho's loop (``Client.loop``, with its own reconnect and
  backoff) and, between two turns of it, decodes and checks the messages that arrived
  (``cloud.ingest.decode`` when only lines are needed, else ``schemas.decode_batch``;
  seq, timestamps), turns readings into line protocol and gathers them into chunks by
  size (``batch_size`` readings) or time (``batch_time_s``). It also sends the PUBACKs
  the writers queue. Handing every message and every PUBACK from one thread to another
  cost as much CPU as paho itself (GIL hand-offs and a socketpair wake-up per ack);
- ``writers`` *writer* threads each write the oldest pending chunk to the store (two
  writes in flight let influxd use a second core); after a write, whichever writer
  finds written chunks at the head of the queue queues their PUBACKs in the order the
  messages arrived, records their seqs and hands the batches to ``on_batch``. A killed
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

Trust: a gateway speaks only for the devices the registry says it owns (provisioning,
:mod:`cloud.provisioning`). A batch's readings and statuses of other devices, or of a
device of another kind, are taken out of it before anything is stored or detected, and
dead-lettered (one record per batch, naming each), counted in
``akita_ingest_refused_total{reason,item}`` and logged once per (gateway, device,
reason). The rest of the batch is stored: a legitimate gateway never loses data to a
registry mistake, and its seq counts as received. A batch whose seq goes back beyond any
re-send, without a birth announcing a new boot id, is dead-lettered whole.
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

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError

from cloud.errors import StoreError
from cloud.ingest.decode import decode_fast
from cloud.ingest.encode import Encoder, ms
from cloud.ingest.late import LATE_MS, LateAggregates, Reaggregating
from cloud.ingest.settings import IngestSettings
from cloud.metrics import Metrics
from cloud.registry import Refusal, Registry, SeqCheck, SeqVerdict
from cloud.store.base import Point, TimeSeriesStore
from schemas import (
    Batch,
    DeadLetter,
    DeviceKind,
    GatewayHealth,
    GatewayMeta,
    GatewayState,
    GatewayStatus,
    WireError,
    decode_batch,
    topics,
)
from schemas.codec import MAX_PAYLOAD_BYTES, decode_model

log = logging.getLogger(__name__)

BatchCallback = Callable[[Batch], None]
MAX_PENDING_CALLBACKS = 5000  # batches stored but not yet through on_batch
MAX_REFUSALS_LOGGED = 10_000  # (gateway, device, reason) logged once each; then forgotten
_REFUSAL_TEXT = {
    Refusal.NOT_OWNER: "is owned by another gateway",
    Refusal.UNKNOWN_DEVICE: "is not provisioned (akita cloud device add)",
    Refusal.KIND_MISMATCH: "is registered with another kind",
}
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 2.0  # a local connection attempt costs nothing


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


@dataclass(slots=True)
class _Entry:
    """One received message on its way to the store."""

    mid: int
    qos: int
    topic: str
    gateway_id: str | None
    payload: bytes
    size: int = 0
    lines: list[bytes] = field(default_factory=list)  # line protocol, ready to send
    points: list[Point] = field(default_factory=list)
    readings: int = 0
    batch: Batch | Any | None = None  # Any: a cloud.ingest.decode struct
    fingerprint: tuple[object, ...] = ()
    seq_check: SeqCheck | None = None
    after_write: Callable[[], None] | None = None
    first_ts_ms: int | None = None
    oldest_ts_ms: int | None = None  # of the first and last reading (spool order)


@dataclass
class _Chunk:
    entries: list[_Entry] = field(default_factory=list)
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
        self._callbacks: deque[Batch] = deque()
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
        self._dead_letters = 0
        self._gaps = 0
        self._duplicates = 0
        self.metrics.counter(
            "akita_ingest_refused_total",
            "Readings, statuses and meta entries refused by the trust checks, and batches "
            "refused for a seq rollback, by reason",
        )
        self._refusals_logged: set[tuple[str, str, str]] = set()
        # in a shared group this worker sees part of each gateway's seqs: gaps are settled
        # through the relational store by every worker's sweeps (cloud.registry)
        self._shared_seqs = settings.group is not None and registry.share_seqs()
        self._next_sweep = 0.0
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
            dead_letters=self._dead_letters,
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

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Block until connected and subscribed (True), or ``timeout`` passes (False)."""
        return self._subscribed.wait(timeout)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._connected = False
        self._subscribed.clear()
        self.metrics.set("akita_ingest_broker_up", 0)
        if not self._stopping.is_set():
            log.warning("broker_disconnected worker=%s reason=%s", self.settings.name, rc)

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
        """Read the messages already waiting in the socket. ``Client.loop`` reads one
        packet per call, after a select(); under load that select() per message cost
        more than reading it."""
        inbox = self._inbox
        before = len(inbox)
        for _ in range(most):
            rc = self.client.loop_read()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                return rc
            if len(inbox) == before:  # nothing waiting (or an ack, not a message)
                break
            before = len(inbox)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

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
            entry = self._handle_safely(msg)
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

    def _handle_safely(self, msg: mqtt.MQTTMessage) -> _Entry:
        parsed = topics.parse(msg.topic)
        payload = bytes(msg.payload)
        entry = _Entry(msg.mid, msg.qos, msg.topic, parsed[0] if parsed else None, payload)
        entry.size = len(payload)
        if parsed is None:
            # our own dead letters or alerts matched by a wildcard: not for us
            return entry
        try:
            channel = parsed[1]
            if channel is topics.Channel.TELEMETRY:
                self._handle_telemetry(entry)
            elif channel is topics.Channel.META:
                self._handle_meta(entry)
            elif channel is topics.Channel.STATUS:
                self._handle_status(entry)
            elif channel is topics.Channel.HEALTH:
                self._handle_health(entry)
        except WireError as exc:
            self._dead_letter(entry, exc.reason)
        except Exception as exc:  # a bug must not stop the stream: log, dead-letter, go on
            log.exception("ingest_handler_error topic=%s", msg.topic)
            self._dead_letter(entry, f"internal error {type(exc).__name__}: {exc}")
        return entry

    def _handle_telemetry(self, entry: _Entry) -> None:
        batch = self._decode_telemetry(entry.payload)
        if batch.gateway_id != entry.gateway_id:
            raise WireError(
                f"gateway_id: {batch.gateway_id!r} does not match topic gateway "
                f"{entry.gateway_id!r}",
                field="gateway_id",
            )
        # the seq check compares what the gateway sent, foreign readings included
        fingerprint = self._fingerprint(batch)
        batch, refused = self._owned_only(batch)
        limits = {
            "now_ms": int(self._now() * 1000),
            "lead_ms": int(self.settings.max_future_s * 1000),
            "age_ms": int(self.settings.max_age_s * 1000),
        }
        gateway = batch.gateway_id
        encoder = self.encoder
        if self._fast:
            first = encoder.batch_lines(batch, entry.lines, **limits)
        else:
            first = None
            scratch: list[bytes] = []  # same checks, then Point objects for a generic store
            encoder.batch_lines(batch, scratch, **limits)
            for r in batch.readings:
                first = ms(r.ts) if first is None else first
                entry.points.append(
                    encoder.reading_point(r.device_id, r.kind, gateway, r.values, r.ts)
                )
        for status in batch.statuses:
            self._add_point(entry, encoder.status_point(gateway, status))
        entry.readings = len(batch.readings)
        entry.first_ts_ms = first
        entry.batch = batch
        entry.payload = entry.payload[:600]  # enough for a dead-letter excerpt
        readings = batch.readings
        last = ms(readings[-1].ts) if readings else None
        if first is not None and last is not None:
            entry.oldest_ts_ms = min(first, last)
        entry.fingerprint = fingerprint
        check = self.registry.check_seq(gateway, batch.seq, fingerprint)
        if check.verdict is SeqVerdict.CONFLICT:
            raise WireError(
                f"seq: {batch.seq} of gateway {gateway!r} was already received with other "
                "content (a gateway must reuse a seq only for an unchanged re-send)",
                field="seq",
            )
        if check.verdict is SeqVerdict.ROLLBACK:
            self.metrics.inc("akita_ingest_refused_total", reason="seq_rollback", item="batch")
            last_seq = self.registry.gateway(gateway)
            raise WireError(
                f"seq: {batch.seq} of gateway {gateway!r} goes back from "
                f"{last_seq.last_seq if last_seq else '?'} without a birth message with a new "
                "boot_id (a replay, or two devices using one gateway's name)",
                field="seq",
            )
        entry.seq_check = check
        if refused:
            self._publish_dead_letter(entry, refused)

    @staticmethod
    def _fingerprint(batch: Batch | Any) -> tuple[object, ...]:
        readings = batch.readings
        return (
            len(readings),
            len(batch.statuses),
            (readings[0].device_id, ms(readings[0].ts)) if readings else None,
            (readings[-1].device_id, ms(readings[-1].ts)) if readings else None,
        )

    def _owned_only(self, batch: Batch | Any) -> tuple[Batch | Any, str]:
        """The batch without the readings and statuses of devices its gateway does not
        own (or of another kind), and the dead-letter reason naming those ("": none).
        One dict lookup per reading; the slow path runs only when something is refused."""
        gateway = batch.gateway_id
        owned = self.registry.owned(gateway)
        get = owned.get
        if all(get(r.device_id) == r.kind for r in batch.readings) and all(
            s.device_id in owned for s in batch.statuses
        ):
            return batch, ""
        reasons: list[str] = []
        readings = []
        for i, r in enumerate(batch.readings):
            why = self._refusal(gateway, r.device_id, r.kind, "reading")
            if why is None:
                readings.append(r)
            else:
                reasons.append(f"readings.{i}.device_id: {r.device_id!r} {why}")
        statuses = []
        for i, st in enumerate(batch.statuses):
            kind = self.registry.device(st.device_id)
            why = self._refusal(gateway, st.device_id, kind.kind.value if kind else "", "status")
            if why is None:
                statuses.append(st)
            else:
                reasons.append(f"statuses.{i}.device_id: {st.device_id!r} {why}")
        total = len(batch.readings) + len(batch.statuses)
        shown = "; ".join(reasons[:5]) + (
            f"; and {len(reasons) - 5} more" if len(reasons) > 5 else ""
        )
        reason = f"refused {len(reasons)} of {total} items of gateway {gateway!r}: {shown}"
        if isinstance(batch, msgspec.Struct):
            return msgspec.structs.replace(batch, readings=readings, statuses=statuses), reason
        return batch.model_copy(update={"readings": readings, "statuses": statuses}), reason

    def _refusal(self, gateway: str, device_id: str, kind: str, item: str) -> str | None:
        """Why ``gateway`` may not send this item (None: it may, perhaps just adopted)."""
        reason = self.registry.judge(gateway, device_id, kind)
        if reason is Refusal.UNKNOWN_DEVICE and self.registry.first_seen and kind:
            from schemas import DeviceInfo  # lab mode only

            if self.registry.adopt(gateway, DeviceInfo(device_id=device_id, kind=kind)):  # type: ignore[arg-type]
                return None
            reason = self.registry.judge(gateway, device_id, kind)
        if reason is None:
            return None
        self.metrics.inc("akita_ingest_refused_total", reason=reason.value, item=item)
        key = (gateway, device_id, reason.value)
        if key not in self._refusals_logged:
            if len(self._refusals_logged) >= MAX_REFUSALS_LOGGED:
                self._refusals_logged.clear()
            self._refusals_logged.add(key)
            log.warning(
                "ingest_refused gateway=%s device=%s reason=%s owner=%s item=%s",
                gateway,
                device_id,
                reason.value,
                self.registry.owner_of(device_id),
                item,
            )
        return _REFUSAL_TEXT[reason]

    def _decode_telemetry(self, payload: bytes) -> Batch | Any:
        """The batch: a msgspec struct when only lines are made from it, else pydantic."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            return decode_batch(payload)  # raises WireError naming the size
        if self._fast and self.on_batch is None:
            fast = decode_fast(payload)  # ~0.6 µs a reading instead of ~4.5
            if fast is not None and not fast.statuses:
                return fast
        try:  # straight from bytes: ~15 % faster than decode_batch's str round trip
            return Batch.model_validate_json(payload, strict=True)
        except ValidationError:
            return decode_batch(payload)  # raises WireError with the canonical reason

    def _add_point(self, entry: _Entry, point: Point) -> None:
        if self._fast:
            entry.lines.append(self.encoder.line(point))
        else:
            entry.points.append(point)

    @staticmethod
    def _decode(model: type[Any], payload: bytes) -> Any:
        return decode_model(model, payload)  # size, UTF-8 and schema; raises WireError

    def _handle_meta(self, entry: _Entry) -> None:
        if not entry.payload:
            return
        meta: GatewayMeta = self._decode(GatewayMeta, entry.payload)
        self._check_topic(entry, meta.gateway_id)
        outcome = self.registry.apply_meta(meta)
        if outcome.refused:
            index = {info.device_id: i for i, info in enumerate(meta.devices)}
            reasons = []
            for device_id, refusal in outcome.refused:
                self.metrics.inc("akita_ingest_refused_total", reason=refusal.value, item="meta")
                key = (meta.gateway_id, device_id, refusal.value)
                if key not in self._refusals_logged:
                    self._refusals_logged.add(key)
                    log.warning(
                        "meta_refused gateway=%s device=%s reason=%s owner=%s",
                        meta.gateway_id,
                        device_id,
                        refusal.value,
                        self.registry.owner_of(device_id),
                    )
                reasons.append(
                    f"devices.{index[device_id]}.device_id: {device_id!r} {_REFUSAL_TEXT[refusal]}"
                )
            shown = "; ".join(reasons[:5]) + (
                f"; and {len(reasons) - 5} more" if len(reasons) > 5 else ""
            )
            self._publish_dead_letter(
                entry,
                f"meta: refused {len(reasons)} of {len(meta.devices)} devices of gateway "
                f"{meta.gateway_id!r} (a gateway's meta describes only devices provisioned "
                f"for it): {shown}",
            )

    def _handle_status(self, entry: _Entry) -> None:
        if not entry.payload:
            return
        status: GatewayStatus = self._decode(GatewayStatus, entry.payload)
        self._check_topic(entry, status.gateway_id)
        online = status.state is GatewayState.ONLINE
        if self.registry.apply_status(status):
            self._add_point(
                entry,
                self.encoder.gateway_state_point(status.gateway_id, online, datetime.now(UTC)),
            )

    def _handle_health(self, entry: _Entry) -> None:
        health: GatewayHealth = self._decode(GatewayHealth, entry.payload)
        self._check_topic(entry, health.gateway_id)
        self.registry.apply_health(health)
        self._add_point(entry, self.encoder.health_point(health))

    @staticmethod
    def _check_topic(entry: _Entry, gateway_id: str) -> None:
        if gateway_id != entry.gateway_id:
            raise WireError(
                f"gateway_id: {gateway_id!r} does not match topic gateway {entry.gateway_id!r}",
                field="gateway_id",
            )

    def _dead_letter(self, entry: _Entry, reason: str) -> None:
        """Refuse the whole message: nothing of it is stored."""
        entry.lines.clear()
        entry.points.clear()
        entry.readings = 0
        entry.batch = None
        entry.seq_check = None
        self._publish_dead_letter(entry, reason)
        self.metrics.inc("akita_ingest_messages_total", result="dead_letter")

    def _publish_dead_letter(self, entry: _Entry, reason: str) -> None:
        """Publish a dead-letter record for ``entry`` (all of it, or the part refused)."""
        payload = entry.payload
        excerpt = repr(payload[:400])[:600]
        record = DeadLetter(
            received_at=datetime.now(UTC),
            topic=entry.topic[:300],
            reason=reason[:2000],
            payload_excerpt=excerpt,
            payload_size=entry.size,
        )
        topic = topics.deadletter(entry.gateway_id)
        # QoS 1, published before the original's PUBACK leaves on the same connection
        self.client.publish(topic, record.model_dump_json().encode(), qos=1)
        self._dead_letters += 1
        self.metrics.inc("akita_ingest_dead_letters_total")
        log.warning("dead_letter topic=%s size=%d reason=%r", entry.topic, entry.size, reason[:300])

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
            "dead_letters": self._dead_letters,
            "gaps": self._gaps,
            "duplicates": self._duplicates,
            "buffer_depth": self.buffer_depth(),
        }
        if self._lag_s is not None:
            fields["lag_s"] = float(self._lag_s)
        point = self.encoder.self_point(self.settings.name, fields, datetime.now(UTC))
        entry = _Entry(0, 0, "", None, b"")
        self._add_point(entry, point)
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
                        self._dead_letter(entry, f"store refused the readings: {exc}")
                        break
                    self._mark_store(ok=False, error=str(exc))
                    if self._stopping.wait(delay * random.uniform(0.5, 1.5)):
                        return False
                    delay = min(delay * 2, self.settings.retry_max_s)
        return True

    def _store_write(self, entries: list[_Entry]) -> None:
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
        acks = self._acks
        for entry in chunk.entries:
            if entry.qos > 0:
                acks.append((entry.mid, entry.qos))  # sent by the network thread
            batch = entry.batch
            if batch is None:
                continue
            check = entry.seq_check
            if check is not None:
                if check.verdict is SeqVerdict.DUPLICATE:
                    self._duplicates += 1
                    self.metrics.inc("akita_ingest_duplicates_total")
                    self.metrics.inc("akita_ingest_messages_total", result="duplicate")
                    continue
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
        if batches and self.on_batch is not None:
            with self._callbacks_cv:
                # slow detectors hold the writer (and so the acks) rather than memory
                while len(self._callbacks) > MAX_PENDING_CALLBACKS and not self._stopping.is_set():
                    self._callbacks_cv.wait(0.5)
                self._callbacks.extend(batches)
                self._callbacks_cv.notify_all()

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
                batch = self._callbacks.popleft()
                self._callbacks_cv.notify_all()
            try:
                if self.on_batch is not None:
                    self.on_batch(batch)
            except Exception:  # detection must not stop ingest: log and go on
                log.exception("on_batch_error gateway=%s seq=%d", batch.gateway_id, batch.seq)
