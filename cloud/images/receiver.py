"""The receiver of ``akita/v1/+/image``: validate, store durably, then acknowledge.

Its own small component, started by the cloud service in ``akita cloud run``, not a
part of the ingest worker, because:

- one subscriber per city keeps each camera's images in the order taken. The ingest
  runs as several workers sharing a subscription group; the broker role lets an account
  read images only by the plain filter, so in every worker each image would arrive N
  times, to processes that may not even hold the image directory;
- an image's fsync and index commit must never hold telemetry acknowledgements back;
- a persistent session of its own (``images.session_expiry_s``, a week by default) keeps
  the images at the broker while the cloud is down; the gateway keeps them meanwhile
  too, one in flight, so nothing is lost when the cloud is down for longer.

Threads: paho's network thread only queues messages (``receive_maximum`` bounds how many
the broker sends unacknowledged); the *store* thread handles them in arrival order. An
image is acknowledged only after its file is fsynced and its row committed; while the
disk or database fails the thread retries the same image with backoff and holds the
rest, unacknowledged (the broker redelivers them after a restart). An image that can
never be stored is published as a dead letter with its reason, then acknowledged.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import SQLAlchemyError

from cloud.images.settings import ImageSettings
from cloud.images.store import ImageStore
from cloud.images.validate import ImageRefused, Owned, check_image
from cloud.ingest.settings import IngestSettings
from cloud.metrics import Metrics
from schemas import DeadLetter, topics

log = logging.getLogger(__name__)

IMAGE_FILTER = "akita/v1/+/image"  # the literal the broker role grants (deploy/mosquitto/roles)
RETRY_INITIAL_S, RETRY_MAX_S = 0.5, 10.0


class ImageReceiver:
    def __init__(
        self,
        store: ImageStore,
        owned: Owned,
        broker: IngestSettings,
        settings: ImageSettings,
        metrics: Metrics,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.owned = owned
        self.broker = broker
        self.settings = settings
        self.metrics = metrics
        self._now = now
        self._on_stored = on_stored
        metrics.counter("akita_images_total", "Camera images received, by result")
        self._inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.store_ok = True
        self.client = self._make_client()

    # --- life cycle ---------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        b, s = self.broker, self.settings
        v5 = b.mqtt_version == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.username or s.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,  # 3.1.1: persistent session
            manual_ack=True,
        )
        if s.username:
            client.username_pw_set(
                s.username, s.password.get_secret_value() if s.password else None
            )
        if b.tls:
            client.tls_set(
                ca_certs=str(b.ca_file) if b.ca_file else None,
                certfile=str(b.cert_file) if b.cert_file else None,
                keyfile=str(b.key_file) if b.key_file else None,
            )
            client.tls_insecure_set(b.tls_insecure)
        client.reconnect_delay_set(1, 5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        b, s = self.broker, self.settings
        self._stopping.clear()
        self._thread = threading.Thread(target=self._store_loop, name="images-store", daemon=True)
        self._thread.start()
        if b.mqtt_version == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = s.receive_maximum
            self.client.connect_async(
                b.broker_host, b.broker_port, b.keepalive_s, clean_start=False, properties=props
            )
        else:
            self.client.connect_async(b.broker_host, b.broker_port, b.keepalive_s)
        self.client.loop_start()
        log.info("images_receiver_start broker=%s:%d dir=%s", b.broker_host, b.broker_port, s.dir)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the image being stored; the rest stays unacknowledged at the broker."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.client.disconnect()
        self.client.loop_stop()
        log.info("images_receiver_stop")

    # --- network thread -----------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object = None
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.warning("images_connect_refused reason=%s", rc)
            return
        self.connected = True
        client.subscribe(IMAGE_FILTER, qos=1)
        log.info("images_connected")

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: object, _p: object = None
    ) -> None:
        self.connected = False
        if not self._stopping.is_set():
            log.warning("images_disconnected reason=%s", rc)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(msg)

    # --- store thread -------------------------------------------------------------------

    def _store_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                msg = self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            if self._handle(msg):
                self.client.ack(msg.mid, msg.qos)

    def _handle(self, msg: mqtt.MQTTMessage) -> bool:
        """True when ``msg`` may be acknowledged (stored, duplicate or dead-lettered)."""
        payload = bytes(msg.payload)
        try:
            header, jpeg = check_image(msg.topic, payload, self.owned, self.settings.max_bytes)
        except ImageRefused as exc:
            self._dead_letter(msg.topic, payload, str(exc))
            return True
        delay = RETRY_INITIAL_S
        while True:
            try:
                result = self.store.put(header, jpeg, datetime.now(UTC))
                break
            except (SQLAlchemyError, OSError) as exc:
                self._mark_store(ok=False, error=f"{type(exc).__name__}: {exc}")
                if self._stopping.wait(delay * random.uniform(0.5, 1.5)):
                    return False  # not stored: the broker redelivers it to the next session
                delay = min(delay * 2, RETRY_MAX_S)
        self._mark_store(ok=True)
        if not result.duplicate:
            self._offer(result.image_id)
        outcome = "duplicate" if result.duplicate else "stored"
        self.metrics.inc("akita_images_total", result=outcome)
        log.info(
            "image_%s gateway=%s camera=%s seq=%d size=%d id=%d",
            outcome, header.gateway_id, header.camera_id, header.seq, header.size, result.image_id,
        )  # fmt: skip
        return True

    def _offer(self, image_id: int) -> None:
        """Hand a new image to the alerts that wait for a picture (cloud.images.alerts);
        a failure there is logged, the image stays stored and is acknowledged."""
        if self._on_stored is None:
            return
        try:
            self._on_stored(image_id)
        except Exception:
            log.exception("image_offer_failed id=%d", image_id)

    def _mark_store(self, *, ok: bool, error: str | None = None) -> None:
        if ok != self.store_ok:
            if ok:
                log.info("images_store_recovered")
            else:
                log.warning("images_store_down reason=%s", error)
        self.store_ok = ok

    def _dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        """As the ingest does (cloud.ingest.handling): a record with the reason on the
        dead-letter topic, counted in the same metric, then the original acknowledged."""
        record = DeadLetter(
            received_at=datetime.now(UTC),
            topic=topic[:300],
            reason=reason[:2000],
            payload_excerpt=repr(payload[:400])[:600],
            payload_size=len(payload),
        )
        parsed = topics.parse(topic)
        gateway = parsed[0] if parsed is not None else None
        info = self.client.publish(
            topics.deadletter(gateway), record.model_dump_json().encode(), qos=1
        )
        del info  # QoS 1 on this session: queued before the original's PUBACK
        self.metrics.inc("akita_ingest_dead_letters_total")
        self.metrics.inc("akita_images_total", result="dead_letter")
        log.warning(
            "image_dead_letter topic=%s size=%d reason=%r", topic, len(payload), reason[:300]
        )

    def health(self) -> dict[str, object]:
        return {
            "connected": self.connected,
            "store_ok": self.store_ok,
            "waiting": self._inbox.qsize(),
        }
