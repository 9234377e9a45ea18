"""Re-notify and escalate critical alerts nobody acknowledges.

A critical alert (severity in ``escalation.severities``, Extreme and Severe by
default) that is still open ``after_s`` after its staff were notified goes to the next
contact group of its route (``escalate``), and the groups already told are reminded
(``renotify``). Past the last group, every ``after_s`` all groups are reminded, at most
``max_renotify`` times. Acknowledging or resolving stops it. Driven by ``tick(now)``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from cloud.notify.config import Escalation
from schemas.alert import Alert, AlertState


@dataclass
class _Tracked:
    alert: Alert
    groups: list[str]
    level: int
    since: datetime
    opened: datetime
    renotified: int = 0


@dataclass(frozen=True)
class EscalationStep:
    """What one tick decided for one alert."""

    alert: Alert
    action: str  # escalate | renotify
    level: int  # index of the highest group now involved
    escalate_to: str | None  # the group newly reached (escalate only)
    remind: tuple[str, ...]  # groups reminded
    unacked_s: float
    at: datetime


class Escalator:
    def __init__(self, config: Escalation) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._tracked: dict[str, _Tracked] = {}

    def is_critical(self, alert: Alert) -> bool:
        return alert.severity in self.config.severities

    def observe(self, alert: Alert, action: str, groups: list[str], at: datetime) -> None:
        """Follow an alert change: start, refresh or stop tracking."""
        with self._lock:
            if alert.state != AlertState.OPEN or action in ("ack", "resolve"):
                self._tracked.pop(alert.id, None)
                return
            tracked = self._tracked.get(alert.id)
            if not self.is_critical(alert) or not groups:
                self._tracked.pop(alert.id, None)
                return
            if tracked is None:
                self._tracked[alert.id] = _Tracked(alert, list(groups), 0, at, at)
            else:
                tracked.alert = alert

    def tracking(self, alert_id: str) -> bool:
        with self._lock:
            return alert_id in self._tracked

    def tick(self, now: datetime) -> list[EscalationStep]:
        after = self.config.after_s
        steps: list[EscalationStep] = []
        with self._lock:
            for t in self._tracked.values():
                if (now - t.since).total_seconds() < after:
                    continue
                unacked = (now - t.opened).total_seconds()
                if t.level + 1 < len(t.groups):
                    t.level += 1
                    step = EscalationStep(
                        alert=t.alert,
                        action="escalate",
                        level=t.level,
                        escalate_to=t.groups[t.level],
                        remind=tuple(t.groups[: t.level]),
                        unacked_s=unacked,
                        at=now,
                    )
                elif t.renotified < self.config.max_renotify:
                    t.renotified += 1
                    step = EscalationStep(
                        alert=t.alert,
                        action="renotify",
                        level=t.level,
                        escalate_to=None,
                        remind=tuple(t.groups[: t.level + 1]),
                        unacked_s=unacked,
                        at=now,
                    )
                else:
                    continue
                t.since = now
                steps.append(step)
        return steps
