"""The gateway's own flood rule and the sign's heartbeat (docs/commands.md, section 11).

- **Local rule.** The cloud pushes each sign's rule as a ``rules_update`` command
  (``schemas/edge_rules.py``); it is checked, stored in the spool file and answered like
  any command. While the uplink is down, every depth reading of the rule's sensor is
  compared with it and the sign's lamp and siren are written (with read-back) here. While
  the uplink is up the cloud's rules act, so the two never fight over a sign.
- **Heartbeat.** Every poll interval of a sign with a ``heartbeat`` register, the gateway
  writes 1 to it. A controller whose watchdog sees no heartbeat for its watchdog time
  drives the lamp from its own float switch: that is what happens if the gateway dies.

What the rule did reaches the cloud through the spool like any reading: the sign is
polled after each write and its coils and lamp current are spooled with their times, and
each switch is logged (``local_rule_switched``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from edge.clock import Clock
from edge.config import Device, EdgeConfig, Register
from edge.drivers import PollDriver, StreamDriver
from edge.errors import DeviceError
from edge.failsafe_store import FailSafeStore
from schemas.edge_rules import SWITCHES, EdgeFloodRule

log = logging.getLogger(__name__)

HEARTBEAT_FIELD = "heartbeat"
SIGN_KIND = "warning_sign"
LIFE_SAFETY_RANK = 0  # edge.commands.RANK: ahead of every queued poll


class StaleRule(ValueError):
    """A ``rules_update`` that does not supersede the installed rule; ``installed`` is
    reported in the rejection's read-back so the cloud can number its next push above it."""

    def __init__(self, message: str, installed: EdgeFloodRule) -> None:
        super().__init__(message)
        self.installed = installed


class FailSafe:
    """One per gateway, owned by the command service."""

    def __init__(
        self,
        config: EdgeConfig,
        drivers: dict[str, PollDriver | StreamDriver],
        clock: Clock,
        online: Callable[[], bool],
    ) -> None:
        self._devices = {d.id: d for d in config.devices}
        self._drivers = drivers  # filled by the agent after this is built
        self._clock = clock
        self._online = online
        self._store = FailSafeStore(config.gateway.spool_path)
        self._rules, bad = self._store.load()
        for why in bad:
            log.error("local_rule_unreadable reason=%s (that sign has no local rule)", why)
        self._coils: dict[tuple[str, str], bool] = {}  # (sign, field) -> last known
        # (sign, field) -> when a local write was read back: a poll answered before then
        # but handled after must not undo what the write confirmed (it would be written
        # again on the next depth reading)
        self._written_at: dict[tuple[str, str], float] = {}
        self._busy: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def rules(self) -> dict[str, EdgeFloodRule]:
        return dict(self._rules)

    # -- the rules_update command ------------------------------------------------------------

    def check(self, sign: Device, params: dict[str, Any]) -> EdgeFloodRule:
        """The rule in a ``rules_update``; ValueError names the field and value."""
        if sign.kind.value != SIGN_KIND:
            raise ValueError(f"device {sign.id!r} is a {sign.kind.value}, not a {SIGN_KIND}")
        try:
            rule = EdgeFloodRule.model_validate(params)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "params"
            msg = err["msg"].removeprefix("Value error, ")
            raise ValueError(f"param {where}: {msg} (got {err.get('input')!r})") from exc
        sensor = self._devices.get(rule.sensor)
        if sensor is None:
            raise ValueError(f"param sensor: {rule.sensor!r} is not on this gateway")
        actions = {a.name for a in sign.actions}
        for switch, _cm in rule.thresholds():
            if switch not in actions:
                raise ValueError(f"device {sign.id!r} has no action {switch!r} to switch")
        installed = self._rules.get(sign.id)
        why = rule.refusal(installed)
        if why is not None and installed is not None:  # the newer rule stays in force
            raise StaleRule(f"param version: {why}; the installed rule stays", installed)
        return rule

    def install(self, sign_id: str, rule: EdgeFloodRule) -> None:
        self._store.save(sign_id, rule)
        self._rules[sign_id] = rule
        log.info(
            "local_rule_installed device=%s sensor=%s version=%d digest=%s",
            sign_id,
            rule.sensor,
            rule.version,
            rule.digest,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for dev in self._devices.values():
            reg = _heartbeat_register(dev)
            if reg is not None:
                self._spawn(self._beat(dev, reg))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._store.close()

    # -- readings ----------------------------------------------------------------------------

    def observe(self, device_id: str, values: dict[str, Any], ts: float | None = None) -> None:
        """Every trusted reading; a depth acts on its signs only while the uplink is down.

        ``ts``: the earliest its values can date from (when the read began). A coil state
        read before a local write was read back is stale and must not undo it: that write
        would be made again on the next depth reading.
        """
        dev = self._devices.get(device_id)
        if dev is not None and dev.kind.value == SIGN_KIND:
            for act in dev.actions:
                key = (device_id, act.field or "")
                stale = ts is not None and ts < self._written_at.get(key, float("-inf"))
                value = values.get(act.field) if act.field else None
                if act.name in SWITCHES and isinstance(value, bool) and not stale:
                    self._coils[key] = value
        depth = values.get("depth")
        if not isinstance(depth, int | float) or self._online():
            return
        for sign_id, rule in self._rules.items():
            if rule.sensor == device_id:
                self._apply(sign_id, rule, float(depth))

    def _apply(self, sign_id: str, rule: EdgeFloodRule, depth: float) -> None:
        for switch, on_cm in rule.thresholds():
            if depth >= on_cm:
                self._switch(sign_id, switch, True, depth, rule.version)
            elif depth < rule.off_below_cm:
                self._switch(sign_id, switch, False, depth, rule.version)

    def _switch(self, sign_id: str, switch: str, on: bool, depth: float, version: int) -> None:
        dev = self._devices.get(sign_id)
        act = next((a for a in dev.actions if a.name == switch), None) if dev else None
        if dev is None or act is None or act.field is None:
            return  # checked at install; a config change since then leaves it alone
        key = (sign_id, act.field)
        if self._coils.get(key) is on or key in self._busy:
            return
        self._busy.add(key)
        self._spawn(self._write(dev, act.field, act.write_multiple, on, depth, version))

    async def _write(
        self, dev: Device, field: str, multiple: bool, on: bool, depth: float, version: int
    ) -> None:
        from edge.drivers.modbus.driver import ModbusDriver

        key = (dev.id, field)
        try:
            drv = self._drivers.get(dev.id)
            reg = next((r for r in dev.registers if r.field == field), None)
            if not isinstance(drv, ModbusDriver) or reg is None:
                log.error("local_rule_failed device=%s field=%s reason=no Modbus driver", *key)
                return
            back, same = await drv.write(
                reg, on, multiple=multiple, rank=LIFE_SAFETY_RANK, begin=lambda: True
            )
            if same:
                self._coils[key] = bool(back)
                self._written_at[key] = self._clock.now_ts()
            log.warning(
                "local_rule_switched device=%s field=%s value=%s readback=%s depth_cm=%.1f "
                "version=%d (uplink down)",
                dev.id,
                field,
                on,
                back,
                depth,
                version,
            )
        except DeviceError as exc:  # tried again on the next depth reading
            log.error("local_rule_failed device=%s field=%s reason=%s", dev.id, field, exc.reason)
        finally:
            self._busy.discard(key)

    # -- heartbeat ---------------------------------------------------------------------------

    async def _beat(self, dev: Device, reg: Register) -> None:
        from edge.drivers.modbus.driver import ModbusDriver

        failing = False
        while True:
            await self._clock.sleep(dev.poll_interval_s)
            drv = self._drivers.get(dev.id)
            if not isinstance(drv, ModbusDriver):
                continue
            try:
                await drv.write(reg, 1, multiple=False, rank=LIFE_SAFETY_RANK, begin=lambda: True)
            except DeviceError as exc:
                if not failing:  # once, like poll errors; the watchdog takes over if it lasts
                    log.error("heartbeat_failed device=%s reason=%s", dev.id, exc.reason)
                failing = True
                continue
            if failing:
                log.info("heartbeat_recovered device=%s", dev.id)
            failing = False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _heartbeat_register(dev: Device) -> Register | None:
    if dev.kind.value != SIGN_KIND:
        return None
    reg = next((r for r in dev.registers if r.field == HEARTBEAT_FIELD), None)
    return reg if reg is not None and reg.writable else None
