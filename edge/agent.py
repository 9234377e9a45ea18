"""The gateway daemon: poll and listen to devices, spool every reading, forward batches.

::

    pollers / streams --(reading, status)--> pending --(<=20 ms)--> Spool (SQLite)
    Spool --take_batch--> Uplink.publish_batch (QoS 1) --PUBACK--> Spool.ack

Readings are committed to the spool before anything is published and leave it only
on the broker's PUBACK. Priority items (call-unit button/cancel, device online /
offline) are committed at once and batched ahead of any backlog. At most ``WINDOW``
ordinary batches are in flight, so a priority batch never queues behind a drain.

Device errors are logged once at error level, then at debug until the device
recovers (one line when it does), so a dead device does not flood the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edge.clock import Clock, iso_ms
from edge.commands import CommandService
from edge.config import Device, EdgeConfig, Report
from edge.drivers import PollDriver, StreamDriver, create
from edge.errors import DeviceError, EdgeError, SpoolError
from edge.logs import quiet_third_party
from edge.quality import FieldLog, judge, limits
from edge.spool import Item, Spool
from edge.uplink import Uplink
from schemas.codec import encode_model
from schemas.devices import values_model
from schemas.wire import QUALITY_OK, QUALITY_SUFFIX, GatewayHealth

if TYPE_CHECKING:
    from edge.cameras.wiring import GatewayCameras

log = logging.getLogger(__name__)

WINDOW = 10  # ordinary batches in flight at once
FLUSH_DELAY_S = 0.02  # readings are committed in small groups, never later than this
DRAIN_ON_STOP_S = 5.0
PRIORITY_EVENTS = frozenset({"button", "cancel", "notice_seen"})  # ACKed once committed


@dataclass
class AgentStats:
    """Counters since start (the demo and ``akita edge run`` print them)."""

    readings_polled: int = 0
    readings_published: int = 0
    spool_depth: int = 0
    spool_dropped: int = 0
    devices_total: int = 0
    devices_online: int = 0
    poll_errors: int = 0
    garbage_frames: int = 0
    invalid_values: int = 0  # NaN, Inf, out of range or an error bit: sent as a quality flag
    missing_fields: int = 0  # fields of a register block that failed while others answered
    last_seq: int = -1
    connected: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _DeviceState:
    """Health and report-on-change memory of one device."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.online: bool | None = None
        self.failures = 0
        self.error_logged = False
        self.last_sent: dict[str, Any] = {}
        self.last_full: float | None = None
        self.last_valid = 0.0
        self.deadband = {r.field: r.deadband for r in device.registers}
        self.bad_fields: set[str] = set()
        self.flagged: set[str] = set()  # fields sent as untrusted, until trusted again

    def select(self, values: dict[str, Any], now: float) -> dict[str, Any] | None:
        """What to report from this poll, per the device's report strategy."""
        dev = self.device
        tolerance = dev.poll_interval_s / 2
        full_due = self.last_full is None or now - self.last_full >= dev.report_period_s - tolerance
        if dev.report is Report.PERIOD:
            if not full_due:
                return None
            out = dict(values)
        elif dev.report is Report.ON_CHANGE_OR_PERIOD and full_due:
            out = dict(values)
        else:  # on change, or on change between two periods
            out = {k: v for k, v in values.items() if self._changed(k, v)}
            if not out:
                return None
        if len(out) == len(values):
            self.last_full = now
        self.last_sent.update(out)
        return out

    def _changed(self, field: str, value: Any) -> bool:
        if field not in self.last_sent:
            return True
        old = self.last_sent[field]
        band = self.deadband.get(field, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or band == 0:
            return bool(old != value)
        return abs(value - old) > band


class Agent:
    """One gateway. ``await Agent(config).run(stop)``; ``stats`` is safe to read any time."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.gateway_id = config.gateway.id
        self.clock = Clock(config.gateway.clock_file)
        self._stats = AgentStats(devices_total=len(config.devices))
        self._states = {d.id: _DeviceState(d) for d in config.devices}
        self._limits = {d.id: limits(d) for d in config.devices}
        self._extras = {d.id: {x.name for x in d.extra_fields} for d in config.devices}
        self._field_log = FieldLog()
        self._drivers: dict[str, PollDriver | StreamDriver] = {}
        self._spool: Spool | None = None
        self._uplink: Uplink | None = None
        self._commands: CommandService | None = None
        self._cameras: GatewayCameras | None = None
        self._pending: list[Item] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._inflight: dict[int, int] = {}  # paho mid -> batch seq
        self._resend: list[Any] = []
        self._first_wait = 0.0
        self._draining = False
        self._stopping = False
        self._spool_failing = False
        self._started = time.monotonic()

    # -- public ------------------------------------------------------------------------------

    @property
    def stats(self) -> AgentStats:
        s = self._stats
        if self._spool is not None:
            s.spool_depth = self._spool.depth + len(self._pending)
            s.spool_dropped = self._spool.dropped
            s.last_seq = self._spool.last_seq
        s.devices_online = sum(1 for st in self._states.values() if st.online)
        per_line = {  # call units share lines: count each line's noise once
            getattr(d, "line_key", d.device.id): d.garbage
            for d in self._drivers.values()
            if isinstance(d, StreamDriver)
        }
        s.garbage_frames = sum(per_line.values())
        s.connected = bool(self._uplink and self._uplink.connected)
        return s

    @property
    def commands(self) -> CommandService | None:
        """The downlink (edge/commands.py), while running."""
        return self._commands

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set (or SIGTERM/SIGINT when no event is given)."""
        quiet_third_party()
        loop = asyncio.get_running_loop()
        own_signals = stop is None
        if stop is None:
            stop = asyncio.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        self._wake = asyncio.Event()
        gw = self.config.gateway
        self._spool = Spool(gw.spool_path, max_items=gw.spool_max_readings)
        self._resend = self._spool.unacked()
        if self._resend or self._spool.waiting:
            log.info(
                "spool_recovered gateway=%s batches=%d waiting=%d next_seq=%d",
                self.gateway_id,
                len(self._resend),
                self._spool.waiting,
                self._spool.last_seq + 1,
            )
        self._commands = CommandService(self.config, self.clock, self._drivers)
        self._uplink = Uplink(
            self.config,
            on_ack=self._acked,
            on_state=self._link_state,
            boot_id=self._spool.boot_id,
            on_command=self._commands.received,
        )
        self._uplink.start()
        self._start_cameras(self._uplink)
        log.info(
            "agent_started gateway=%s devices=%d spool=%s",
            self.gateway_id,
            len(self.config.devices),
            gw.spool_path,
        )
        workers: list[asyncio.Task[None]] = []
        for dev in self.config.devices:
            drv = create(dev, self.config)
            self._drivers[dev.id] = drv
            if isinstance(drv, PollDriver):
                workers.append(asyncio.create_task(self._poll_loop(dev, drv)))
            else:
                workers.append(asyncio.create_task(self._stream_loop(dev, drv)))
                workers.append(asyncio.create_task(self._stream_watch(dev, drv)))
        self._commands.start(self._uplink)  # before the loop runs any command callback
        sender = asyncio.create_task(self._send_loop())
        health = asyncio.create_task(self._health_loop())
        try:
            await stop.wait()
        finally:
            log.info("agent_stopping gateway=%s", self.gateway_id)
            self._stopping = True
            for t in workers:
                t.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            health.cancel()
            if self._cameras is not None:
                await self._cameras.stop()  # its last readings are spooled below
            self._flush()
            await self._drain(sender)
            await self._commands.stop()
            await self._uplink.stop()
            for drv in self._drivers.values():
                with contextlib.suppress(DeviceError, OSError):
                    await drv.close()
            st = self.stats
            log.info(
                "agent_stopped gateway=%s published=%d spool_depth=%d last_seq=%d",
                self.gateway_id,
                st.readings_published,
                st.spool_depth,
                st.last_seq,
            )
            self._spool.close()
            if own_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    def _start_cameras(self, uplink: Uplink) -> None:
        """The ``[cameras]`` section's service; imported only when configured (Pillow, httpx)."""
        if self.config.cameras is None or not self.config.cameras.cameras:
            return
        from edge.cameras.wiring import GatewayCameras

        self._cameras = GatewayCameras(
            self.config.cameras,
            self.gateway_id,
            uplink,
            now=self.clock.now_ts,
            emit=lambda body: self._enqueue(Item(body)),
        )
        if self._commands is not None:  # cameras take ``snapshot`` commands
            self._commands.cameras = self._cameras
        self._cameras.start()

    # -- devices -----------------------------------------------------------------------------

    async def _poll_loop(self, dev: Device, drv: PollDriver) -> None:
        interval = dev.poll_interval_s
        with contextlib.suppress(DeviceError):
            await drv.open()
        next_t = math.ceil(self.clock.now_ts() / interval) * interval
        while not self._stopping:
            await self.clock.sleep_until(next_t)
            try:
                began = self.clock.now_ts()
                values = await self._read(dev, drv)
                ts = self.clock.now_ts()  # the response's arrival, not the poll's start
                self._missing(dev, drv.missing, ts)
                self._got(dev, values, ts, began=began)
            except DeviceError as exc:
                self._failed(dev, exc.reason, self.clock.now_ts())
            except Exception as exc:  # a driver bug must not stop the other devices
                log.exception("driver_crash device=%s", dev.id)
                self._failed(dev, f"driver error: {type(exc).__name__}", self.clock.now_ts())
            next_t += interval
            now = self.clock.now_ts()
            if next_t <= now:  # overran (slow device, retries): skip to the next slot
                next_t = math.ceil(now / interval) * interval

    async def _read(self, dev: Device, drv: PollDriver) -> dict[str, Any]:
        delay = dev.backoff_s
        for attempt in range(dev.retries + 1):
            try:
                return await drv.read()
            except DeviceError:
                if attempt == dev.retries:
                    raise
                await self.clock.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def _stream_loop(self, dev: Device, drv: StreamDriver) -> None:
        delay = max(dev.backoff_s, 0.5)
        while True:
            try:
                await drv.open()
                delay = max(dev.backoff_s, 0.5)
                async for values in drv.stream():
                    self._got(dev, values, self.clock.now_ts(), stream=True)
                raise DeviceError(dev.id, "stream closed")
            except DeviceError as exc:
                drv.last_error = exc.reason
                self._failed(dev, exc.reason, self.clock.now_ts())
            except Exception as exc:  # a driver bug must not stop the other devices
                log.exception("driver_crash device=%s", dev.id)
                self._failed(dev, f"driver error: {type(exc).__name__}", self.clock.now_ts())
            with contextlib.suppress(DeviceError, OSError):
                await drv.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _stream_watch(self, dev: Device, drv: StreamDriver) -> None:
        """A stream device that sends nothing valid for a poll interval has failed a poll."""
        interval = dev.poll_interval_s
        st = self._states[dev.id]
        while True:
            started = self.clock.now_ts()
            await self.clock.sleep(interval)
            if st.last_valid < started:
                self._failed(dev, drv.last_error or "no data", self.clock.now_ts())

    def _got(
        self,
        dev: Device,
        values: dict[str, Any],
        ts: float,
        *,
        stream: bool = False,
        began: float | None = None,
    ) -> None:
        """``began``: when the read started. A read of several blocks can hold values from
        before a local write that landed between its blocks, though it ends after it."""
        st = self._states[dev.id]
        st.last_valid = ts
        if st.online is not True:
            if st.error_logged:
                log.info("device_recovered device=%s after_failures=%d", dev.id, st.failures)
            st.online = True
            self._status(dev.id, ts, "online", None)
        st.failures = 0
        st.error_logged = False
        self._stats.readings_polled += 1
        values = self._trusted(dev, values, ts)
        if self._commands is not None:  # the local flood rule (edge/failsafe.py)
            self._commands.observe(dev.id, values, ts if began is None else began)
        if self._cameras is not None:
            self._cameras.observe(dev.kind.value, dev.site, dev.id, values)
        if not values:
            return
        selected = values if stream else st.select(values, ts)
        if not selected:
            return
        body = self._encode(st, selected, ts)
        if body is not None:
            event = selected.get("event")
            self._enqueue(Item(body, priority=event in PRIORITY_EVENTS))

    def _trusted(self, dev: Device, values: dict[str, Any], ts: float) -> dict[str, Any]:
        """What may go on the wire: trusted values (the kind's and the declared extra
        fields), and ``<field>_quality`` = why for each untrusted one (never its number),
        or ``ok`` once when a flagged field is trusted again."""
        good, bad = judge(dev, values, self._limits[dev.id])
        st = self._states[dev.id]
        out = dict(good)
        if bad:
            self._stats.invalid_values += len(bad)
            self._field_log.report("value_invalid", dev.id, bad, ts, values)
            for name, why in bad.items():
                out[name + QUALITY_SUFFIX] = why[:200]
            st.flagged.update(bad)
        for name in [n for n in st.flagged if n in good]:
            out[name + QUALITY_SUFFIX] = QUALITY_OK
            st.flagged.discard(name)
            st.last_sent.pop(name, None)  # its value goes out again with the 'ok'
        return out

    def _missing(self, dev: Device, missing: dict[str, str], ts: float) -> None:
        if missing:
            self._stats.missing_fields += len(missing)
            self._field_log.report("field_missing", dev.id, missing, ts)

    def _encode(self, st: _DeviceState, selected: dict[str, Any], ts: float) -> bytes | None:
        dev = st.device
        model = values_model(dev.kind)
        extras = self._extras[dev.id]
        values = {k: v for k, v in selected.items() if k in model.model_fields}
        extra = {k: v for k, v in selected.items() if k in extras}
        quality = {
            k.removesuffix(QUALITY_SUFFIX): v
            for k, v in selected.items()
            if k.endswith(QUALITY_SUFFIX) and k not in model.model_fields and k not in extras
        }
        try:
            checked = model.model_validate(values)
        except ValidationError as exc:
            # out-of-range or wrong-typed fields are dropped, the rest still goes out
            bad = {str(e["loc"][0]) for e in exc.errors(include_url=False) if e["loc"]}
            for f in bad - st.bad_fields:
                log.error("value_rejected device=%s field=%s value=%r", dev.id, f, values.get(f))
            st.bad_fields |= bad
            checked = model.model_validate({k: v for k, v in values.items() if k not in bad})
        text = checked.model_dump_json(exclude_none=True)
        if text == "{}" and not extra and not quality:
            return None
        tail = "".join(
            f',"{key}":{json.dumps(part, separators=(",", ":"), ensure_ascii=False)}'
            for key, part in (("extra", extra), ("quality", quality))
            if part
        )
        return (
            f'{{"device_id":"{dev.id}","kind":"{dev.kind.value}","ts":"{iso_ms(ts)}",'
            f'"values":{text}{tail}}}'
        ).encode()

    def _failed(self, dev: Device, reason: str, ts: float) -> None:
        st = self._states[dev.id]
        st.failures += 1
        self._stats.poll_errors += 1
        if not st.error_logged:
            log.error("device_error device=%s reason=%s", dev.id, reason)
            st.error_logged = True
        else:
            log.debug("device_error device=%s reason=%s", dev.id, reason)
        if st.failures >= dev.offline_after and st.online is not False:
            st.online = False
            log.warning(
                "device_offline device=%s reason=%s failures=%d", dev.id, reason, st.failures
            )
            self._status(dev.id, ts, "offline", reason)

    def _status(self, device_id: str, ts: float, state: str, reason: str | None) -> None:
        body: dict[str, Any] = {"device_id": device_id, "ts": iso_ms(ts), "state": state}
        if reason:
            body["reason"] = reason[:500]
        self._enqueue(
            Item(json.dumps(body, separators=(",", ":")).encode(), priority=True, status=True)
        )

    # -- spool and sending -------------------------------------------------------------------

    def _enqueue(self, item: Item) -> None:
        self._pending.append(item)
        if item.priority:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._pending or self._spool is None:
            return
        items, self._pending = self._pending, []
        if self._spool.waiting == 0:
            self._first_wait = time.monotonic()
        try:
            dropped = self._spool.add(items)
        except SpoolError as exc:
            # keep them in memory and try again shortly; nothing is published meanwhile
            if not self._spool_failing:
                log.error("spool_write_failed gateway=%s reason=%s", self.gateway_id, exc)
            self._spool_failing = True
            self._pending[:0] = items
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(1.0, self._flush)
            return
        if self._spool_failing:
            log.info("spool_write_recovered gateway=%s", self.gateway_id)
            self._spool_failing = False
        if dropped:
            log.warning("spool_overflow gateway=%s dropped=%d", self.gateway_id, dropped)
        self._wake.set()

    def _acked(self, mid: int) -> None:
        seq = self._inflight.pop(mid, None)
        if seq is None or self._spool is None:
            return
        try:
            self._stats.readings_published += self._spool.ack(seq)
        except SpoolError as exc:  # the batch stays spooled and is re-sent after a restart
            log.error("spool_ack_failed gateway=%s seq=%d reason=%s", self.gateway_id, seq, exc)
        self._wake.set()

    def _link_state(self, up: bool) -> None:
        self._wake.set()
        if self._commands is not None:
            self._commands.wake()

    async def _send_loop(self) -> None:
        delay = self.config.gateway.batch_max_delay_s
        while True:
            timeout = delay
            connected = self._uplink is not None and self._uplink.connected
            if connected and self._spool is not None and self._spool.waiting:
                timeout = max(0.005, self._first_wait + delay - time.monotonic())
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            try:
                self._send_some()
            except EdgeError as exc:  # disk trouble: keep trying, the readings are still queued
                log.error("send_failed gateway=%s reason=%s", self.gateway_id, exc)

    def _send_some(self) -> None:
        spool, uplink = self._spool, self._uplink
        if spool is None or uplink is None or not uplink.connected:
            return
        gw = self.config.gateway
        while self._resend and len(self._inflight) < WINDOW:
            b = self._resend.pop(0)
            self._inflight[uplink.publish_batch(b.payload)] = b.seq
        while spool.waiting:
            priority = spool.waiting_priority > 0
            if not priority:
                if self._resend or len(self._inflight) >= WINDOW:
                    return
                young = time.monotonic() - self._first_wait < gw.batch_max_delay_s
                if young and spool.waiting < gw.batch_max_readings and not self._draining:
                    return  # let the batch fill up; the send loop wakes within the delay
            sent_at = iso_ms(self.clock.now_ts())  # simulated time too, like the readings
            b = spool.take_batch(self.gateway_id, sent_at, gw.batch_max_readings)
            if b is None:
                return
            self._inflight[uplink.publish_batch(b.payload)] = b.seq

    async def _drain(self, sender: asyncio.Task[None]) -> None:
        """On stop: send what the link takes within a few seconds; the rest stays spooled."""
        self._draining = True
        deadline = time.monotonic() + DRAIN_ON_STOP_S
        spool, uplink = self._spool, self._uplink
        assert spool is not None and uplink is not None
        while time.monotonic() < deadline and uplink.connected and spool.depth:
            self._wake.set()
            await asyncio.sleep(0.05)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.gateway.health_interval_s)
            st = self.stats
            health = GatewayHealth(
                gateway_id=self.gateway_id,
                ts=self.clock.now(),
                uptime_s=time.monotonic() - self._started,
                spool_depth=st.spool_depth,
                spool_dropped=st.spool_dropped,
                devices_total=st.devices_total,
                devices_online=st.devices_online,
                poll_errors=st.poll_errors + st.garbage_frames,
                last_seq=st.last_seq,
            )
            assert self._uplink is not None
            self._uplink.publish_health(encode_model(health))
            log.info(
                "health gateway=%s spool_depth=%d devices_online=%d/%d poll_errors=%d "
                "invalid_values=%d missing_fields=%d published=%d connected=%s",
                self.gateway_id,
                st.spool_depth,
                st.devices_online,
                st.devices_total,
                st.poll_errors,
                st.invalid_values,
                st.missing_fields,
                st.readings_published,
                st.connected,
            )
