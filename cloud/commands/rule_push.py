"""The cloud pushes each warning sign's local flood rule by itself (docs/commands.md,
section 11).

When a sign's gateway comes online (its birth) and when the cloud starts with its rule
set (the rules live in ``[commands]``, so a change is a restart), the version the
gateway last reported installed (a ``rules_update`` result's read-back) is compared with
the cloud's; when they differ, a ``rules_update`` goes out like any command (one id per
push, re-published with that id, expiring, audited). Versions are ordered: the next is
one above every version sent or reported, so a gateway that refuses a push because it
holds a newer rule (its rejection reports it) gets one numbered above that.

Work runs on its own thread: the births arrive on the MQTT network thread and the
results inside the command service's transaction, neither of which may issue.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from cloud.commands.records import CommandRecord
from cloud.commands.service import CommandService
from cloud.commands.states import CloudState
from cloud.db.commands import CommandRow
from schemas.commands import CommandPriority
from schemas.edge_rules import READBACK_DIGEST, READBACK_VERSION, RULES_UPDATE, EdgeFloodRule

log = logging.getLogger(__name__)

RULE_ID = "local-flood-rule"
ISSUER = f"rule:{RULE_ID}"  # a rule issuer: never holds the sign against the flood rules
_IN_FLIGHT = {CloudState.QUEUED, CloudState.SENT, CloudState.ACCEPTED}
_ALL = "*"
SIGN_KIND = "warning_sign"


@dataclass(frozen=True)
class Push:
    """One ``rules_update`` already issued for a sign, as far as the push cares."""

    version: int
    digest: str
    state: CloudState
    readback: dict[str, Any] | None


def reported(history: Iterable[Push]) -> tuple[int, str] | None:
    """(version, digest) installed on the gateway: the highest any result reported,
    because a gateway never installs an older version than it has."""
    seen = [
        (int(p.readback[READBACK_VERSION]), str(p.readback.get(READBACK_DIGEST, "")))
        for p in history
        if p.readback and isinstance(p.readback.get(READBACK_VERSION), int)
    ]
    return max(seen) if seen else None


def next_push(desired: EdgeFloodRule, history: list[Push]) -> EdgeFloodRule | None:
    """The rule to send now, with its version; None when the gateway has it, it is on
    its way, or the gateway refused exactly this version (sending it again cannot help)."""
    have = reported(history)
    if have is not None and have[1] == desired.digest:
        return None
    floor = have[0] if have else 0
    same = [p for p in history if p.digest == desired.digest and p.version > floor]
    if same:
        last = max(same, key=lambda p: p.version)
        if any(p.state in _IN_FLIGHT or p.state is CloudState.REJECTED for p in same):
            return None
        return desired.with_version(last.version)  # expired or failed: the same rule again
    top = max([floor, *(p.version for p in history)])
    return desired.with_version(top + 1)


class RulePusher:
    """See the module docstring. :meth:`flush` waits until queued work is done."""

    def __init__(self, service: CommandService, rules: dict[str, EdgeFloodRule]) -> None:
        self.service = service
        self.rules = dict(rules)
        self._inbox: queue.Queue[str | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="akita-rule-push", daemon=True)

    # -- listeners (never block, never raise) ----------------------------------------------

    def start(self) -> None:
        self.service.status_listeners.append(self.on_status)
        self.service.result_listeners.append(self.on_result)
        self._thread.start()
        self._put(_ALL)  # the rule set may have changed since the last run

    def replace(self, rules: dict[str, EdgeFloodRule]) -> None:
        """A new rule set (a settings reload): every sign is compared again."""
        self.rules = dict(rules)
        self._put(_ALL)

    def on_status(self, gateway_id: str, online: bool) -> None:
        if online:
            self._put(gateway_id)

    def on_result(self, record: CommandRecord) -> None:
        # a refusal may report a newer installed version: number the next push above it
        if record.action == RULES_UPDATE and record.state is CloudState.REJECTED:
            self._put(record.gateway_id)

    def flush(self, timeout: float = 30.0) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._inbox.put(None)
            self._thread.join(timeout)

    def _put(self, gateway_id: str) -> None:
        with self._idle:
            self._pending += 1
        self._inbox.put(gateway_id)

    def _loop(self) -> None:
        while (gateway_id := self._inbox.get()) is not None:
            try:
                self.sync(None if gateway_id == _ALL else gateway_id)
            except Exception as exc:  # life-safety: say it loudly, keep serving births
                self.service.metrics.inc("akita_command_failures_total", where="rules_push")
                log.error(
                    "rules_push_failed gateway=%s reason=%s: %s",
                    gateway_id,
                    type(exc).__name__,
                    exc,
                )
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    # -- the work ----------------------------------------------------------------------------

    def sync(self, gateway_id: str | None = None) -> list[CommandRecord]:
        """Push every sign's rule (of ``gateway_id``, or all) whose gateway lacks it."""
        sent: list[CommandRecord] = []
        for sign, desired in sorted(self.rules.items()):
            owner = self.service.registry.gateway_of(sign)
            if owner is None:
                log.error("rules_push_skipped sign=%s reason=no owning gateway in the registry; "
                          "it has no local flood rule", sign)  # fmt: skip
                continue
            if gateway_id is not None and owner != gateway_id:
                continue
            info = self.service.registry.device(sign)
            if info is None or str(info.kind) != SIGN_KIND:  # the edge would reject it
                log.error("rules_push_skipped sign=%s reason=registry kind %s is not %s; "
                          "no local flood rule", sign, info and info.kind, SIGN_KIND)  # fmt: skip
                continue
            record = self._sync_sign(sign, desired)
            if record is not None:
                sent.append(record)
        return sent

    def _sync_sign(self, sign: str, desired: EdgeFloodRule) -> CommandRecord | None:
        history = self._history(sign)
        rule = next_push(desired, history)
        if rule is None:
            self._say_refused(sign, desired, history)
            return None
        have = reported(history)
        note = (
            f"gateway reports version {have[0]} digest {have[1]}"
            if have
            else "gateway reports none"
        ) + f"; cloud has version {rule.version} digest {rule.digest}"
        record = self.service.issue(
            sign, RULES_UPDATE, dict(rule.params()), issuer=ISSUER,
            priority=CommandPriority.HIGH, rule_id=RULE_ID,
        )  # fmt: skip
        self.service.audit(ISSUER, "rules_push", sign, f"command {record.id}: {note}")
        log.info(
            "rules_push sign=%s command=%s version=%d (%s)", sign, record.id, rule.version, note
        )
        return record

    def _history(self, sign: str) -> list[Push]:
        stmt = select(CommandRow).where(
            CommandRow.device_id == sign, CommandRow.action == RULES_UPDATE
        )
        pushes: list[Push] = []
        with self.service.sessionmaker() as s:
            for row in s.scalars(stmt):
                params = row.params or {}
                version, digest = params.get("version"), params.get("digest")
                if isinstance(version, int):  # staff may send one by hand: it counts too
                    pushes.append(Push(version, str(digest), CloudState(row.state), row.readback))
        return pushes

    def _say_refused(self, sign: str, desired: EdgeFloodRule, history: list[Push]) -> None:
        have = reported(history)
        if have is not None and have[1] == desired.digest:
            return  # in sync
        if any(p.digest == desired.digest and p.state is CloudState.REJECTED for p in history):
            self.service.metrics.inc("akita_command_failures_total", where="rules_push")
            log.error("rules_push_refused sign=%s digest=%s reason=the gateway rejected this rule; "
                      "the sign runs without it (or an older one) while its uplink is down; "
                      "see the command's reason", sign, desired.digest)  # fmt: skip
