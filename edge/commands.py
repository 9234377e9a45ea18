"""The gateway's side of the downlink: receive, persist, check, execute, report.

::

    cmd (QoS 1) --> parse + check --> CommandStore (commit) --> PUBACK
                                          |
               accepted: a task per command --> bus lock / line queue (by priority)
                                          |           begin(): expiry check, 'executing' committed
                                          v
                     Modbus write + read-back | AKCU notice until $AKNA
                                          |
               every state change --> outbox (same transaction) --> cmd/result (QoS 1)

- A command is committed (with its first result) before the broker gets its PUBACK, so
  a crash after the PUBACK loses nothing, and a crash before it gets a re-delivery.
- An id is executed at most once: a repeat answers the state it has and runs nothing;
  a command left 'executing' by a crash is reported ``failed``, never run again.
- Nothing runs past ``expires_at``: checked on arrival and again with the bus or line
  held, right before the first byte goes to the device.
- Results wait in the outbox while the uplink is down, like telemetry in the spool.

``AKITA_EDGE_TEST_HOLD_BEFORE_EXECUTE_S`` (tests only, never in production): wait this
long between committing a command and executing it, so a test can kill the process in
that window.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from edge.actions import SNAPSHOT, check_camera_command, check_command
from edge.clock import Clock
from edge.command_store import EXECUTING, CommandStore, StoredCommand
from edge.config import Device, EdgeConfig
from edge.drivers import PollDriver, StreamDriver
from edge.drivers.callunit import downlink
from edge.drivers.modbus import link
from edge.errors import DeviceError, SpoolError
from edge.failsafe import FailSafe, StaleRule
from edge.uplink import Uplink
from schemas.codec import encode_model
from schemas.commands import Command, CommandPriority, CommandResult, CommandState
from schemas.edge_rules import RULES_UPDATE
from schemas.wire import ID_PATTERN

log = logging.getLogger(__name__)

RANK = {p: i for i, p in enumerate(CommandPriority)}  # life_safety first
RESULTS_IN_FLIGHT = 50
TEST_HOLD_ENV = "AKITA_EDGE_TEST_HOLD_BEFORE_EXECUTE_S"


@dataclass
class CommandStats:
    received: int = 0
    repeated: int = 0
    unparsable: int = 0
    accepted: int = 0
    rejected: int = 0
    expired: int = 0
    done: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class CameraCommands(Protocol):
    """The gateway's cameras as the downlink sees them (edge/cameras/wiring.py)."""

    def has_camera(self, device_id: str) -> bool: ...

    async def snapshot_now(self, device_id: str) -> tuple[dict[str, Any] | None, str]: ...


class _Refused(Exception):
    def __init__(
        self, state: CommandState, reason: str, readback: dict[str, Any] | None = None
    ) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason
        self.readback = readback


class CommandService:
    """One per gateway; lives on the agent's event loop."""

    def __init__(
        self,
        config: EdgeConfig,
        clock: Clock,
        drivers: dict[str, PollDriver | StreamDriver],
    ) -> None:
        self.config = config
        self.gateway_id = config.gateway.id
        self.clock = clock
        self.stats = CommandStats()
        self._devices = {d.id: d for d in config.devices}
        self._drivers = drivers
        self._store = CommandStore(config.gateway.spool_path)
        self._uplink: Uplink | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[int] = set()
        self._last_sent = 0  # highest outbox row handed to the uplink in this process
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._inbox: collections.deque[tuple[bytes, int, int]] = collections.deque()
        self._inbox_ready = asyncio.Event()
        self._intake: asyncio.Task[None] | None = None
        self._hold = float(os.environ.get(TEST_HOLD_ENV, "0") or 0)
        self.failsafe = FailSafe(config, drivers, clock, online=self._online)
        # set by the agent when it runs cameras: they take ``snapshot`` (edge/actions.py)
        self.cameras: CameraCommands | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, uplink: Uplink) -> None:
        """Resume what a previous run left (before any new command is handled)."""
        self._uplink = uplink
        if self._hold:
            log.warning("command_test_hold seconds=%s (test hook %s)", self._hold, TEST_HOLD_ENV)
        self._store.prune(self.clock.now_ts())
        for stored in self._store.open_commands():
            cmd = Command.model_validate_json(stored.body)
            if stored.state == EXECUTING:
                self._finish(
                    cmd,
                    CommandState.FAILED,
                    "the gateway restarted while executing it; not repeated (at most once)",
                )
            else:
                log.info("command_resumed id=%s device=%s", cmd.id, cmd.device_id)
                self._spawn(cmd)
        self._pump = asyncio.create_task(self._pump_results())
        self._intake = asyncio.create_task(self._take_in())
        self.failsafe.start()

    async def stop(self) -> None:
        loops = [t for t in (self._pump, self._intake) if t is not None]
        for t in [*self._tasks, *loops]:
            t.cancel()
        await asyncio.gather(*self._tasks, *loops, return_exceptions=True)
        await self.failsafe.stop()
        self._store.close()

    def _online(self) -> bool:
        return self._uplink is not None and self._uplink.connected

    def observe(self, device_id: str, values: dict[str, Any], ts: float | None = None) -> None:
        """A trusted reading: the local flood rule acts on it while the uplink is down."""
        self.failsafe.observe(device_id, values, ts)

    def wake(self) -> None:
        """The uplink came up or went down."""
        self._wake.set()

    @property
    def pending_results(self) -> int:
        return self._store.pending_results

    # -- arrival -----------------------------------------------------------------------------

    def received(self, payload: bytes, mid: int, qos: int) -> None:
        """A message on our cmd topic (on the loop); handled in turn by :meth:`_take_in`."""
        self._inbox.append((payload, mid, qos))
        self._inbox_ready.set()

    async def _take_in(self) -> None:
        # one command per loop turn: a burst of hundreds must not hold up a button press
        # that the call-unit line has just delivered
        while True:
            await self._inbox_ready.wait()
            while self._inbox:
                self._handle(*self._inbox.popleft())
                await asyncio.sleep(0)
            self._inbox_ready.clear()

    def _handle(self, payload: bytes, mid: int, qos: int) -> None:
        """PUBACK only once the command is committed."""
        self.stats.received += 1
        try:
            committed = self._receive(payload)
        except SpoolError as exc:
            # not committed: no PUBACK, so the broker delivers it again after a reconnect
            log.error("command_store_failed gateway=%s reason=%s", self.gateway_id, exc)
            return
        if committed and self._uplink is not None:
            self._uplink.ack(mid, qos)

    def _receive(self, payload: bytes) -> bool:
        data, command_id, why = _parse(payload)
        if data is None or command_id is None:
            self.stats.unparsable += 1
            log.error(
                "command_unparsable gateway=%s reason=%s payload=%r",
                self.gateway_id,
                why,
                payload[:120],
            )
            return True  # acknowledged: a re-delivery could never be answered either
        known = self._store.get(command_id)
        if known is not None:
            self.stats.repeated += 1
            log.info("command_repeat id=%s state=%s", command_id, known.state)
            if known.last_result is not None:
                self._store.answer(known.last_result)
                self._wake.set()
            return True
        try:
            cmd, device_id = self._check(data, command_id)
        except _Refused as refused:
            self._refuse(data, command_id, payload, refused)
            return True
        stored = StoredCommand(
            command_id,
            CommandState.ACCEPTED.value,
            RANK[cmd.priority],
            cmd.expires_at.timestamp(),
            payload,
            None,
        )
        self._store.receive(stored, device_id, self._result(cmd, CommandState.ACCEPTED, None))
        self.stats.accepted += 1
        log.info(
            "command_accepted id=%s device=%s action=%s priority=%s issuer=%s expires_at=%s",
            cmd.id,
            cmd.device_id,
            cmd.action,
            cmd.priority.value,
            cmd.issuer,
            cmd.expires_at.isoformat(),
        )
        self._wake.set()
        self._spawn(cmd)
        return True

    def _check(self, data: dict[str, Any], command_id: str) -> tuple[Command, str]:
        try:
            cmd = Command.model_validate(data)
        except ValidationError as exc:
            raise _Refused(CommandState.REJECTED, _validation_reason(exc)) from exc
        if cmd.gateway_id != self.gateway_id:
            raise _Refused(
                CommandState.REJECTED,
                f"gateway_id {cmd.gateway_id!r} is not this gateway ({self.gateway_id!r})",
            )
        device = self._devices.get(cmd.device_id)
        camera = self.cameras is not None and self.cameras.has_camera(cmd.device_id)
        if device is None and not camera:
            raise _Refused(
                CommandState.REJECTED, f"device_id {cmd.device_id!r} is not on this gateway"
            )
        now = self.clock.now_ts()
        if now >= cmd.expires_at.timestamp():
            raise _Refused(
                CommandState.EXPIRED,
                f"arrived after expires_at ({cmd.expires_at.isoformat()}); not executed",
            )
        if device is None:  # one of the gateway's cameras
            try:
                check_camera_command(cmd.device_id, cmd.action, dict(cmd.params))
            except ValueError as exc:
                raise _Refused(CommandState.REJECTED, str(exc)) from exc
            return cmd, cmd.device_id
        try:
            if cmd.action == RULES_UPDATE:
                self.failsafe.check(device, dict(cmd.params))
            else:
                check_command(device, cmd.action, dict(cmd.params))
        except StaleRule as exc:
            raise _Refused(CommandState.REJECTED, str(exc), exc.installed.readback()) from exc
        except ValueError as exc:
            raise _Refused(CommandState.REJECTED, str(exc)) from exc
        return cmd, device.id

    def _refuse(
        self, data: dict[str, Any], command_id: str, payload: bytes, refused: _Refused
    ) -> None:
        device_id = data.get("device_id")
        if not isinstance(device_id, str) or not _ID.fullmatch(device_id):
            device_id = "_unknown"  # the result still names the command by its id
        expires = data.get("expires_at")
        try:
            until = datetime.fromisoformat(str(expires).replace("Z", "+00:00")).timestamp()
        except ValueError:
            until = self.clock.now_ts()
        result = CommandResult(
            id=uuid.UUID(command_id),
            gateway_id=self.gateway_id,
            device_id=device_id,
            state=refused.state,
            ts=self.clock.now(),
            reason=refused.reason[:500],
            readback=refused.readback,
        )
        body = encode_model(result)
        stored = StoredCommand(command_id, refused.state.value, 99, until, payload[:4096], None)
        self._store.receive(stored, device_id, body)
        if refused.state is CommandState.EXPIRED:
            self.stats.expired += 1
        else:
            self.stats.rejected += 1
        log.warning(
            "command_%s id=%s device=%s reason=%s",
            refused.state.value,
            command_id,
            device_id,
            refused.reason,
        )
        self._wake.set()

    # -- execution ---------------------------------------------------------------------------

    def _spawn(self, cmd: Command) -> None:
        task = asyncio.create_task(self._execute(cmd))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _begin(self, cmd: Command) -> Callable[[], bool]:
        """Run by the driver with the bus or line held, right before the first byte."""

        def begin() -> bool:
            if self._expired(cmd):
                return False
            self._store.start(str(cmd.id))
            log.info("command_executing id=%s device=%s", cmd.id, cmd.device_id)
            return True

        return begin

    def _expired(self, cmd: Command) -> bool:
        return self.clock.now_ts() >= cmd.expires_at.timestamp()

    async def _execute(self, cmd: Command) -> None:
        if self._hold:
            await asyncio.sleep(self._hold)  # test hook only (see the module docstring)
        if cmd.device_id not in self._devices and cmd.action == SNAPSHOT:
            await self._snapshot(cmd)
            return
        device = self._devices[cmd.device_id]
        drv = self._drivers.get(device.id)
        if cmd.action == RULES_UPDATE:
            self._install_rule(cmd, device)
            return
        try:
            act, checked = check_command(device, cmd.action, dict(cmd.params))
            state, reason, readback = await self._run(cmd, device, drv, act.name, checked)
        except (link.NotStarted, downlink.NotStarted):
            state, reason, readback = (
                CommandState.EXPIRED,
                f"expires_at ({cmd.expires_at.isoformat()}) passed before execution",
                None,
            )
        except downlink.NoticeFailed as exc:
            state, reason, readback = CommandState.FAILED, str(exc), None
        except DeviceError as exc:
            state, reason, readback = CommandState.FAILED, exc.reason, None
        except ValueError as exc:  # the config changed since it was accepted
            state, reason, readback = CommandState.REJECTED, str(exc), None
        except SpoolError as exc:
            log.error("command_store_failed id=%s reason=%s", cmd.id, exc)
            return  # left 'accepted' or 'executing': the next start settles it
        try:
            self._finish(cmd, state, reason, readback)
        except SpoolError as exc:
            log.error("command_store_failed id=%s reason=%s", cmd.id, exc)

    async def _snapshot(self, cmd: Command) -> None:
        """A camera's ``snapshot``: a picture at once; done with its seq once spooled."""
        try:
            cams = self.cameras
            if cams is None or not cams.has_camera(cmd.device_id):
                raise ValueError(f"device_id {cmd.device_id!r} is not a camera of this gateway")
            check_camera_command(cmd.device_id, cmd.action, dict(cmd.params))
            if not self._begin(cmd)():
                self._finish(cmd, CommandState.EXPIRED, "expires_at passed before the picture")
                return
            readback, reason = await cams.snapshot_now(cmd.device_id)
            if readback is None:
                self._finish(cmd, CommandState.FAILED, reason)
            else:
                self._finish(cmd, CommandState.DONE, reason, readback)
        except ValueError as exc:
            self._finish(cmd, CommandState.REJECTED, str(exc))
        except SpoolError as exc:
            log.error("command_store_failed id=%s reason=%s", cmd.id, exc)

    def _install_rule(self, cmd: Command, device: Device) -> None:
        """A rules_update: stored in the spool file, then done (no device I/O)."""
        try:
            rule = self.failsafe.check(device, dict(cmd.params))
            if not self._begin(cmd)():
                self._finish(cmd, CommandState.EXPIRED, "expires_at passed before installing")
                return
            self.failsafe.install(device.id, rule)
            self._finish(
                cmd,
                CommandState.DONE,
                f"local flood rule version {rule.version} installed (sensor {rule.sensor})",
                rule.readback(),
            )
        except StaleRule as exc:  # a newer one was installed since it was accepted
            self._finish(cmd, CommandState.REJECTED, str(exc), exc.installed.readback())
        except ValueError as exc:  # the config changed since it was accepted
            self._finish(cmd, CommandState.REJECTED, str(exc))
        except SpoolError as exc:
            log.error("command_store_failed id=%s reason=%s", cmd.id, exc)

    async def _run(
        self,
        cmd: Command,
        device: Device,
        drv: PollDriver | StreamDriver | None,
        action: str,
        checked: Any,
    ) -> tuple[CommandState, str | None, dict[str, Any] | None]:
        from edge.drivers.callunit.driver import CallUnitDriver
        from edge.drivers.modbus.driver import ModbusDriver

        rank = RANK[cmd.priority]
        if isinstance(drv, ModbusDriver):
            act = next(a for a in device.actions if a.name == action)
            reg = next(r for r in device.registers if r.field == act.field)
            back, same = await drv.write(
                reg, checked, multiple=act.write_multiple, rank=rank, begin=self._begin(cmd)
            )
            readback = {reg.field: back}
            if same:
                return CommandState.DONE, f"wrote {checked!r}, read back {back!r}", readback
            return CommandState.FAILED, f"wrote {checked!r} but read back {back!r}", readback
        if isinstance(drv, CallUnitDriver):
            sends = await drv.notice(
                checked, rank=rank, begin=self._begin(cmd), expired=lambda: self._expired(cmd)
            )
            return (
                CommandState.DONE,
                f"notice {checked['notice_id']} acknowledged by unit {device.unit_id} "
                f"({sends} send{'s' if sends > 1 else ''})",
                None,
            )
        raise ValueError(f"device {device.id!r} has no driver that executes commands")

    def _finish(
        self,
        cmd: Command,
        state: CommandState,
        reason: str | None,
        readback: dict[str, Any] | None = None,
    ) -> None:
        self._store.finish(str(cmd.id), state.value, self._result(cmd, state, reason, readback))
        count = getattr(self.stats, state.value)
        setattr(self.stats, state.value, count + 1)
        level = logging.INFO if state is CommandState.DONE else logging.WARNING
        log.log(
            level,
            "command_%s id=%s device=%s action=%s reason=%s",
            state.value,
            cmd.id,
            cmd.device_id,
            cmd.action,
            reason,
        )
        self._wake.set()

    def _result(
        self,
        cmd: Command,
        state: CommandState,
        reason: str | None,
        readback: dict[str, Any] | None = None,
    ) -> bytes:
        return encode_model(
            CommandResult(
                id=cmd.id,
                gateway_id=self.gateway_id,
                device_id=cmd.device_id,
                state=state,
                ts=self.clock.now(),
                reason=reason[:500] if reason else None,
                readback=readback,
            )
        )

    # -- results out -------------------------------------------------------------------------

    async def _pump_results(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                self._send_some()
            except SpoolError as exc:
                log.error("command_results_failed gateway=%s reason=%s", self.gateway_id, exc)
                await asyncio.sleep(1.0)
                self._wake.set()

    def _send_some(self) -> None:
        up = self._uplink
        if up is None or not up.connected:
            return  # paho re-sends what is in flight after a reconnect; the rest waits here
        room = RESULTS_IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return
        for n, body in self._store.outbox(self._last_sent, room):
            self._in_flight.add(n)
            self._last_sent = n
            up.publish_result(body, lambda n=n: self._sent(n))  # type: ignore[misc]

    def _sent(self, n: int) -> None:
        self._in_flight.discard(n)
        try:
            self._store.sent(n)
        except SpoolError as exc:  # it stays in the outbox and goes again after a restart
            log.error("command_results_failed gateway=%s reason=%s", self.gateway_id, exc)
        self._wake.set()


_ID = re.compile(ID_PATTERN)


def _parse(payload: bytes) -> tuple[dict[str, Any] | None, str | None, str]:
    """(the JSON object, its id as a UUID string, why not) of a command payload."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, None, f"not JSON: {exc}"
    if not isinstance(data, dict):
        return None, None, f"not a JSON object (got {type(data).__name__})"
    if "id" not in data:
        return data, None, "field 'id' is missing"
    try:
        return data, str(uuid.UUID(str(data["id"]))), ""
    except ValueError:
        return data, None, f"field 'id' is not a UUID (got {str(data['id'])[:60]!r})"


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "<command>"
        got = "" if err["type"] == "value_error" else f" (got {str(err.get('input'))[:60]!r})"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}{got}")
    return "; ".join(parts)
