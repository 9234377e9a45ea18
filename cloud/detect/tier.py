"""The detector tier: detection fed by every stored batch, partitioned, with failover.

Topology: ingest workers (any number, one shared-subscription group) write each batch,
then hand it on by partition through the broker (:mod:`cloud.detect.handoff`). A
partition's stream waits in the broker in one persistent MQTT session per partition,
client id ``<client_prefix>-<p>``: whoever owns the partition connects with that id and
gets every message published for it, also those published while nobody was connected
(a detector outage is replayed in order afterwards). Only one client can hold a client
id at a time; the broker drops the older one.

Ownership (:mod:`cloud.detect.lease`): every instance heartbeats, computes the same
rendezvous assignment over the live instances (:mod:`cloud.detect.partitions`), takes
the leases of its partitions when free or expired and releases those it no longer
wins. A killed owner's leases expire after ``lease_ttl_s`` and the standby takes over.

State (:mod:`cloud.detect.checkpoint`): the owner checkpoints each partition's detector
state every ``checkpoint_s`` (at most 60 s), fenced by its lease, and acknowledges the
broker's messages only once a checkpoint holds their effect. A new owner restores the
checkpoint; the broker redelivers what came after it; repeats are dropped by seq
(:class:`SeqOrder`), and detections made again are recognised
(:mod:`cloud.detect.marks`): a redelivery opens no second alert.

Threads: each partition's MQTT client only decodes and queues what arrives; the
partition's worker thread applies everything queued since its last turn as one batch
(detectors, then one alert transaction for the turn's detections), so a burst of alerts
costs one database round of the alert lifecycle per turn instead of one per message and
does not hold the readings behind it for seconds. A turn that fails (the database gone
mid-alert) restarts the partition from its checkpoint; the broker redelivers the rest.

Order: batches of one gateway may be written by several ingest workers and arrive out of
order; :class:`SeqOrder` puts them back in seq order per gateway (waiting up to
``reorder_s`` for a missing seq, then going on without it). Alerts carry the readings'
times, so a replay after an outage raises them as of when the readings were taken.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.manager import AlertChange, AlertManager
from cloud.detect import checkpoint, handoff, lease, marks
from cloud.detect.base import Detection, DeviceContext
from cloud.detect.config import DetectConfig
from cloud.detect.engine import DetectorEngine
from cloud.detect.partitions import assign
from cloud.errors import SettingsError
from cloud.ingest.settings import IngestSettings
from cloud.seq_ledger import SEQ_WINDOW
from schemas import Batch, WireError
from schemas.codec import describe

log = logging.getLogger(__name__)


def _default_name() -> str:
    return f"detect-{socket.gethostname()}-{os.getpid()}"[:80]


class TierSettings(BaseModel):
    """One detector instance. ``from_env()`` reads ``AKITA_DETECT_<FIELD>``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        default_factory=_default_name,
        min_length=1,
        max_length=80,
        description="This instance's name (unique among the instances)",
    )
    partitions: int = Field(
        default=1, ge=1, le=1024, description="Same as the ingest's detect_partitions"
    )
    client_prefix: str = Field(
        default="akita-detect",
        pattern=r"^[A-Za-z0-9_.-]{1,48}$",
        description="Partition p's MQTT session is <client_prefix>-<p>",
    )
    username: str | None = Field(
        default=None,
        max_length=64,
        description="Broker user of partition p's session; '{p}' is replaced by p "
        "(akita-detect-{p}: a broker that ties client ids to usernames needs one per "
        "partition). Never the ingest's user: that would take the ingest's session over",
    )
    password: SecretStr | None = Field(default=None, description="Of those broker users")
    lease_ttl_s: float = Field(default=10.0, gt=0, le=60, description="Takeover after this")
    heartbeat_s: float = Field(default=2.0, gt=0, description="Heartbeat and lease renewal")
    checkpoint_s: float = Field(
        default=5.0, gt=0, le=60, description="Longest time between two checkpoints"
    )
    max_unacked: int = Field(
        default=500, ge=1, description="Checkpoint early when this many messages wait"
    )
    reorder_s: float = Field(default=2.0, ge=0, description="Wait this long for a missing seq")
    tick_s: float = Field(default=1.0, gt=0, description="Time-based detections")

    @classmethod
    def from_env(cls, prefix: str = "AKITA_DETECT_", **overrides: Any) -> TierSettings:
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            env = os.environ.get(prefix + name.upper())
            if env is not None:
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(f"detector settings ({prefix}*): {describe(exc)}") from exc


def check_accounts(settings: TierSettings, broker: IngestSettings) -> None:
    """Refuse partition accounts that cannot work on a broker that makes the client id
    the username (deploy/mosquitto): raises :class:`SettingsError` naming the field."""
    if broker.username and not settings.username:
        raise SettingsError(
            "AKITA_DETECT_USERNAME: required when the broker takes a username "
            f"(ingest.username = {broker.username!r}): the partition sessions need accounts "
            "of their own, e.g. 'akita-detect-{p}' with AKITA_DETECT_PASSWORD "
            "(deploy/mosquitto/make-service-credential.sh akita-detect PARTITIONS)"
        )
    if settings.username and settings.partitions > 1 and "{p}" not in settings.username:
        raise SettingsError(
            f"AKITA_DETECT_USERNAME: {settings.username!r} has no '{{p}}' but there are "
            f"{settings.partitions} partitions: where the client id is the username, the "
            "partitions' sessions would take each other over (use e.g. 'akita-detect-{p}')"
        )


@dataclass
class Item:
    """One hand-off on its way through a partition: applied, or dropped as a repeat."""

    handoff: handoff.Handoff
    mid: int = 0
    qos: int = 0
    done: bool = False
    received: float = field(default_factory=time.time)  # wall clock: stage latencies


@dataclass
class _Gateway:
    applied: int | None = None  # the highest seq applied in order (None: none yet)
    seen: set[int] = field(default_factory=set)  # applied, from applied - SEEN_WINDOW up
    held: dict[int, Item] = field(default_factory=dict)
    held_since: float = 0.0


SEEN_WINDOW = 256  # seqs remembered below the highest: a redelivery reaches no further


class SeqOrder:
    """Per gateway: apply batches in seq order, each once. Picklable (checkpointed).

    A seq arriving after a higher one was applied (the gateway's first batches raced
    through two ingest workers, or it came after ``reorder_s``) is applied late rather
    than lost, unless it was applied before; a seq more than :data:`SEEN_WINDOW` below
    the highest is taken for a repeat."""

    def __init__(self, reorder_s: float) -> None:
        self.reorder_s = reorder_s
        self.gateways: dict[str, _Gateway] = {}

    def offer(self, item: Item, now: float) -> list[Item]:
        """The items now ready to apply, in order (``item`` may be one, or a repeat)."""
        b = item.handoff.batch
        seq = b.seq
        g = self.gateways.setdefault(b.gateway_id, _Gateway())
        if item.handoff.reset or g.applied is None or g.applied - seq >= SEQ_WINDOW:
            ready = self._release(g)  # the old counter's held batches first
            g.applied, g.seen = seq, {seq}
            return [*ready, item]
        if seq in g.seen or seq in g.held or seq <= g.applied - SEEN_WINDOW:
            item.done = True  # a repeat: a worker re-sent it, or it is in the checkpoint
            return []
        if seq < g.applied:
            log.info("detect_seq_late gateway=%s seq=%d applied=%d", b.gateway_id, seq, g.applied)
            self._mark(g, seq)
            return [item]
        if not g.held:
            g.held_since = now
        g.held[seq] = item
        return self._next(g)

    def _mark(self, g: _Gateway, seq: int) -> None:
        g.seen.add(seq)
        if len(g.seen) > 2 * SEEN_WINDOW and g.applied is not None:
            g.seen = {s for s in g.seen if s > g.applied - SEEN_WINDOW}

    def _next(self, g: _Gateway) -> list[Item]:
        ready = []
        while g.applied is not None and g.applied + 1 in g.held:
            g.applied += 1
            self._mark(g, g.applied)
            ready.append(g.held.pop(g.applied))
        return ready

    def _release(self, g: _Gateway) -> list[Item]:
        ready = [g.held[s] for s in sorted(g.held)]
        g.held.clear()
        return ready

    def due(self, now: float) -> list[Item]:
        """Items held longer than ``reorder_s`` behind a missing seq: go on without it."""
        ready = []
        for gateway_id, g in self.gateways.items():
            if g.held and now - g.held_since >= self.reorder_s:
                first = min(g.held)
                log.info(
                    "detect_seq_skipped gateway=%s missing_from=%s to=%d",
                    gateway_id,
                    None if g.applied is None else g.applied + 1,
                    first - 1,
                )
                g.applied = first - 1
                ready += self._next(g)
                g.held_since = now
        return ready

    def next_due(self) -> float | None:
        """When (monotonic) the first held batch stops waiting for its missing seq."""
        starts = [g.held_since for g in self.gateways.values() if g.held]
        return min(starts) + self.reorder_s if starts else None

    def state(self) -> dict[str, tuple[int, list[int]]]:
        return {
            k: (g.applied, sorted(g.seen))
            for k, g in self.gateways.items()
            if g.applied is not None
        }

    def applied(self) -> dict[str, int]:
        """The highest seq applied in order, per gateway."""
        return {k: g.applied for k, g in self.gateways.items() if g.applied is not None}

    def restore(self, state: Mapping[str, tuple[int, list[int]]]) -> None:
        self.gateways = {k: _Gateway(applied=a, seen=set(s)) for k, (a, s) in state.items()}


class Partition:
    """One partition's detectors, order and unacknowledged messages. Thread-safe."""

    def __init__(self, number: int, engine: DetectorEngine, order: SeqOrder) -> None:
        self.number = number
        self.engine = engine
        self.order = order
        self.lock = threading.RLock()
        self.event_time: datetime | None = None  # newest reading time applied
        self.pending: list[Item] = []  # in arrival order, waiting for a checkpoint's ack
        self.lease: lease.Lease | None = None
        self.client: mqtt.Client | None = None
        self.last_checkpoint = time.monotonic()
        self.last_message = 0.0  # monotonic
        self.lag_s = 0.0  # now - stored_at of the last message: catching up when large
        # decoded on paho's thread, applied by the partition's worker thread in batches
        self.inbox: deque[Item] = deque()
        self.wake = threading.Event()
        self.closed = threading.Event()
        self.worker: threading.Thread | None = None
        self.failed = False  # a turn failed: the coordinator restarts it from its checkpoint

    def take(self, items: Iterable[Item], devices: DeviceContext) -> list[Detection]:
        """Feed ready items to the detectors (under the lock)."""
        out: list[Detection] = []
        for item in items:
            readings = item.handoff.batch.readings
            out += self.engine.feed(readings, devices)
            for r in readings:
                if self.event_time is None or r.ts > self.event_time:
                    self.event_time = r.ts
            item.done = True
        return out

    def state(self) -> dict[str, Any]:
        return {
            "engine": self.engine.state(),
            "order": self.order.state(),
            "applied": self.order.applied(),  # for people reading a checkpoint
            "event_time": self.event_time,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.engine.restore(state["engine"])
        self.order.restore(state["order"])
        self.event_time = state.get("event_time")


Clock = Callable[[], datetime]


class DetectorTier:
    """One detector instance; see the module docstring.

    ``exclusive``: this instance is the only detector (``akita cloud run``): it owns
    every partition without leases, and :meth:`offer` takes its own ingest's batches
    directly as well.
    """

    def __init__(
        self,
        settings: TierSettings,
        broker: IngestSettings,
        sessionmaker: sessionmaker[Session],
        alerts: AlertManager,
        devices: Callable[[], DeviceContext],
        detect: DetectConfig | None = None,
        *,
        clock: Clock = lambda: datetime.now(UTC),
        exclusive: bool = False,
        engine_factory: Callable[[], DetectorEngine] | None = None,
        run_alert_ticks: bool = True,
        on_tick: Callable[[datetime], None] | None = None,
        refresh: Callable[[], object] | None = None,
    ) -> None:
        check_accounts(settings, broker)
        self.settings = settings
        self.broker = broker
        self.sm = sessionmaker
        self.alerts = alerts
        self.devices = devices
        self.detect = detect or DetectConfig()
        self.clock = clock
        self.exclusive = exclusive
        self._engine_factory = engine_factory or (lambda: DetectorEngine(self.detect))
        self._run_alert_ticks = run_alert_ticks  # the owner of partition 0 runs them
        self._on_tick = on_tick
        self._refresh = refresh  # reload the device registry when provisioning moved it
        self.partitions: dict[int, Partition] = {}
        self._lock = threading.Lock()  # partitions dict
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.detections = 0

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        if self.exclusive:
            for p in range(self.settings.partitions):
                self._own(p, None)
        else:
            self._coordinate()
        for name, target in (
            ("detect-coordinator", self._coordinator),
            ("detect-tick", self._ticker),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "detect_start name=%s partitions=%d exclusive=%s",
            self.settings.name,
            self.settings.partitions,
            self.exclusive,
        )

    def stop(self) -> None:
        """Checkpoint and release every partition, leave. Safe to call twice."""
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._threads.clear()
        for p in list(self.partitions):
            self._disown(p, checkpoint_first=True)
        if not self.exclusive:
            lease.leave(self.sm, self.settings.name)
        log.info("detect_stop name=%s", self.settings.name)

    def owned(self) -> list[int]:
        with self._lock:
            return sorted(self.partitions)

    # --- ownership ----------------------------------------------------------------------

    def _coordinator(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_s):
            try:
                self._restart_failed()
                if self._refresh is not None:
                    self._refresh()
                if not self.exclusive:
                    self._coordinate()
            except Exception:  # the next round retries; the leases outlive a few misses
                log.exception("detect_coordinate_failed name=%s", self.settings.name)

    def _coordinate(self) -> None:
        s, now = self.settings, datetime.now(UTC)
        lease.heartbeat(self.sm, s.name, now)
        members = lease.live_members(self.sm, now, s.lease_ttl_s)
        mine = set(assign(s.partitions, members).get(s.name, []))
        for p in list(self.partitions):
            part = self.partitions[p]
            assert part.lease is not None
            if p not in mine:
                self._disown(p, checkpoint_first=True)  # moved: hand it over at once
            elif not lease.renew(self.sm, part.lease, now, s.lease_ttl_s):
                log.warning("detect_lease_lost name=%s partition=%d", s.name, p)
                self._disown(p, checkpoint_first=False)
        for p in sorted(mine - set(self.partitions)):
            got = lease.acquire(self.sm, p, s.name, now, s.lease_ttl_s)
            if got is not None:
                self._own(p, got)

    def _restart_failed(self) -> None:
        """Partitions whose worker failed: dropped without a checkpoint and taken again,
        so they resume from their last checkpoint and nothing is skipped (the coordinator
        takes a leased one again right after, with the same lease)."""
        with self._lock:
            failed = [p for p, part in self.partitions.items() if part.failed]
        for p in failed:
            self._disown(p, checkpoint_first=False)
            if self.exclusive:
                self._own(p, None)

    def _own(self, p: int, got: lease.Lease | None) -> None:
        part, saved = self._restored(p)
        part.lease = got
        log.info(
            "detect_partition_taken name=%s partition=%d fence=%s checkpoint_at=%s event_time=%s",
            self.settings.name,
            p,
            got.fence if got else None,
            saved.saved_at.isoformat() if saved else None,
            saved.event_time.isoformat() if saved and saved.event_time else None,
        )
        with self._lock:
            self.partitions[p] = part
        part.worker = threading.Thread(
            target=self._work, args=(part,), name=f"detect-partition-{p}", daemon=True
        )
        part.worker.start()
        part.client = self._connect(part)

    def _restored(self, p: int) -> tuple[Partition, checkpoint.Checkpoint | None]:
        """Partition ``p`` from its checkpoint, or afresh when there is none or it cannot
        be read. Afresh, not refused: a partition nobody owns detects nothing (floods,
        emergency calls), while a fresh one only has its baselines to learn again."""
        part = Partition(p, self._engine_factory(), SeqOrder(self.settings.reorder_s))
        # a database error is not caught: taking the partition fails and the coordinator's
        # next round tries again, so a good checkpoint is not thrown away for a blip
        try:
            saved = checkpoint.load(self.sm, p)
            if saved is not None:
                part.restore(saved.state)
            return part, saved
        except (checkpoint.CheckpointError, AttributeError, KeyError, TypeError) as exc:
            # unpickled, but not a state this engine takes (a slot or key it lacks)
            log.error(
                "detect_checkpoint_unreadable name=%s partition=%d action=start_fresh "
                "lost=learnt_baselines error=%r",  # quoted: the message has spaces
                self.settings.name,
                p,
                str(exc),
            )
            fresh = Partition(p, self._engine_factory(), SeqOrder(self.settings.reorder_s))
            return fresh, None

    def _disown(self, p: int, *, checkpoint_first: bool) -> None:
        with self._lock:
            part = self.partitions.pop(p, None)
        if part is None:
            return
        part.closed.set()
        part.wake.set()
        if part.worker is not None and part.worker is not threading.current_thread():
            part.worker.join(30)
        if checkpoint_first and not part.failed:
            try:
                self._turn(part)  # what arrived before the stop: applied, then checkpointed
            except Exception:  # not checkpointed then: the next owner gets it redelivered
                log.exception("detect_turn_failed partition=%d restart=checkpoint", p)
                part.failed = True
        with part.lock:
            if checkpoint_first:
                self._checkpoint(part)
            client, part.client = part.client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        if part.lease is not None and checkpoint_first:
            lease.release(self.sm, part.lease, datetime.now(UTC))
        log.info("detect_partition_released name=%s partition=%d", self.settings.name, p)

    # --- MQTT: one persistent session per partition ----------------------------------------

    def _connect(self, part: Partition) -> mqtt.Client:
        b = self.broker
        v5 = b.mqtt_version == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{self.settings.client_prefix}-{part.number}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        s = self.settings
        if s.username:
            secret = s.password.get_secret_value() if s.password else None
            client.username_pw_set(s.username.replace("{p}", str(part.number)), secret)
        if b.tls:
            client.tls_set(
                ca_certs=str(b.ca_file) if b.ca_file else None,
                certfile=str(b.cert_file) if b.cert_file else None,
                keyfile=str(b.key_file) if b.key_file else None,
            )
            client.tls_insecure_set(b.tls_insecure)
        client.reconnect_delay_set(1, 2)
        topic = handoff.topic(part.number)

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            if rc.is_failure:  # nothing is detected for this partition: say so loudly
                log.error(
                    "detect_broker_refused partition=%d reason=%s (AKITA_DETECT_USERNAME?)",
                    part.number,
                    rc,
                )
            else:
                if v5:
                    c.subscribe(topic, options=SubscribeOptions(qos=1))
                else:
                    c.subscribe(topic, 1)

        def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
            self._on_message(part, msg)

        client.on_connect = on_connect
        client.on_message = on_message
        props = None
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = b.session_expiry_s
            props.ReceiveMaximum = min(65535, self.settings.max_unacked * 2)
            client.connect_async(
                b.broker_host, b.broker_port, b.keepalive_s, clean_start=False, properties=props
            )
        else:
            client.connect_async(b.broker_host, b.broker_port, b.keepalive_s)
        client.loop_start()
        return client

    def _on_message(self, part: Partition, msg: mqtt.MQTTMessage) -> None:
        try:
            item = Item(handoff.decode(bytes(msg.payload)), msg.mid, msg.qos)
        except WireError as exc:  # never from our own ingest: log it, acknowledge it
            log.warning("detect_handoff_refused partition=%d reason=%s", part.number, exc.reason)
            if msg.qos and part.client is not None:
                part.client.ack(msg.mid, msg.qos)
            return
        part.inbox.append(item)
        part.wake.set()

    def _work(self, part: Partition) -> None:
        """The partition's worker: apply what arrived since its last turn as one batch.
        A burst of alerts then costs one alert transaction per turn rather than one per
        message, and what arrives behind it is not queued behind each of those; held
        batches are released when their reorder wait ends, not at the next tick."""
        while not part.closed.is_set():
            with part.lock:
                due = part.order.next_due()
            timeout = self.settings.tick_s if due is None else due - time.monotonic()
            part.wake.wait(max(0.0, min(timeout, self.settings.tick_s)))
            part.wake.clear()
            if part.closed.is_set():
                return
            try:
                self._turn(part)
            except Exception:  # e.g. the database failed mid-alert: the turn's effect is
                # uncertain, so start again from the checkpoint (the broker redelivers)
                log.exception("detect_turn_failed partition=%d restart=checkpoint", part.number)
                part.failed = True
                return

    def _turn(self, part: Partition) -> None:
        with part.lock:  # taken first: what arrives while it waits joins this turn
            items: list[Item] = []
            while part.inbox:
                items.append(part.inbox.popleft())
            mono = time.monotonic()
            ready: list[Item] = []
            for item in items:
                part.pending.append(item)
                ready += part.order.offer(item, mono)
            if items:
                part.last_message = mono
                part.lag_s = max(0.0, time.time() - items[-1].handoff.stored_at)
            ready += part.order.due(mono)
            self._apply(part, ready)
            if len(part.pending) >= self.settings.max_unacked:
                self._checkpoint(part)

    # --- detection ------------------------------------------------------------------------

    def offer(self, batch: Batch, owned: Mapping[str, str], *, reset: bool = False) -> None:
        """A batch stored by this process's own ingest (exclusive mode): queued for the
        partition's worker like a hand-off, so its alerts join the turn's transaction.
        ``owned``: the gateway's devices, as the ingest workers split by (handoff.split).
        While a partition is far behind this waits: slow detection holds the ingest's
        callbacks (and so their memory), as it did when batches were applied here."""
        split = handoff.split(batch, self.settings.partitions, owned)
        for p, readings in split.items():
            part = self.partitions.get(p)
            if part is None:
                continue
            h = handoff.Handoff(batch.model_copy(update={"readings": readings}), reset, time.time())
            while len(part.inbox) >= self.settings.max_unacked and not part.closed.is_set():
                time.sleep(0.01)
            part.inbox.append(Item(h))
            part.wake.set()

    def _apply(self, part: Partition, items: list[Item]) -> None:
        """Under the partition lock: detect, then hand the new detections to the alerts."""
        if not items:
            return
        detections = part.take(items, self.devices())
        self._alert(part, detections)

    def _alert(self, part: Partition, detections: list[Detection]) -> list[AlertChange]:
        new = marks.fresh(self.sm, detections)
        if not new:
            return []
        # one transaction for the turn; alerts carry the readings' times, so a replay
        # raises them as of then
        changes = self.alerts.handle(new, datetime.now(UTC), at_reading_times=True)
        if not marks.remember(self.sm, part.lease, new, datetime.now(UTC)):
            log.warning("detect_marks_fenced partition=%d", part.number)
        self.detections += len(new)
        return changes

    # --- time: ticks and checkpoints --------------------------------------------------------

    def _ticker(self) -> None:
        while not self._stop.wait(self.settings.tick_s):
            try:
                self.tick()
            except Exception:  # the loop must survive a bad tick; say why
                log.exception("detect_tick_failed name=%s", self.settings.name)

    def tick(self) -> None:
        """Release held batches, run time-based detections, checkpoint when due."""
        mono = time.monotonic()
        now = self.clock()
        for part in list(self.partitions.values()):
            with part.lock:
                self._apply(part, part.order.due(mono))
                # catching up after an outage: time stands where the readings are, or
                # every device would look offline until the backlog is read
                behind = part.lag_s > 5.0 and mono - part.last_message < 2.0
                at = part.event_time if behind and part.event_time is not None else now
                self._alert(part, part.engine.tick(at))
                if mono - part.last_checkpoint >= self.settings.checkpoint_s:
                    self._checkpoint(part)
        if self._run_alert_ticks and (self.exclusive or 0 in self.partitions):
            self.alerts.tick(now)  # hold-offs and maintenance windows: one instance
            if self._on_tick is not None:
                self._on_tick(now)

    def _checkpoint(self, part: Partition) -> None:
        """Under the partition lock: save the state, then acknowledge what it holds."""
        part.last_checkpoint = time.monotonic()
        if part.failed or (part.lease is None and not self.exclusive):
            return  # failed: its state may hold a turn's half-done effect
        guard = part.lease or lease.Lease(part.number, self.settings.name, 0)
        ok = checkpoint.save(
            self.sm,
            guard,
            part.state(),
            event_time=part.event_time,
            now=datetime.now(UTC),
            fenced=part.lease is not None,
        )
        if not ok:
            log.warning("detect_checkpoint_fenced partition=%d", part.number)
            return
        acked = 0
        client = part.client
        while part.pending and part.pending[0].done:
            item = part.pending.pop(0)
            if item.qos and client is not None:
                client.ack(item.mid, item.qos)
            acked += 1
        log.debug("detect_checkpoint partition=%d acked=%d", part.number, acked)
