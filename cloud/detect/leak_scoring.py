"""Score leak alarms against labelled leaks: the onset-window rule and BattLeDIM's rule.

Both rules walk the alarms in time order and give each alarm to at most one leak:

* **onset** (ours): a leak can take an alarm from its start until ``window`` after the
  later of its start and its peak (an incipient leak only becomes visible as it grows),
  and at most ``REPAIR_GRACE`` after its repair (the night after a daytime repair still
  shows it). An alarm goes to a leak that can take it and has no alarm yet — abrupt leaks
  first (their onset is a step at their start, an incipient leak's is spread over weeks of
  growth), then the earliest started. So an alarm hours before a leak's start is never
  credited to it, an alarm weeks after an abrupt leak's start is not credited to it
  either, and a month-long incipient leak does not swallow a new abrupt leak's alarm.
  Where a leak's zone is known (``Leak.zones``: the devices it shows at), only an alarm
  of one of those devices can be its: a leak in the tank zone does not take the block's
  alarm, however close in time (L-Town's pipes each feed one zone,
  ``cloud/data/ltown/leak_response.csv``).
* **battledim** (the competition's): a leak can take an alarm from its start until its
  end (repair); the same order, and time alone: the competition scored a detection's
  location apart, and this detector localises no finer than a zone.

An alarm no leak can take is **false**. An alarm inside the window of a leak that already
has one is a **repeat** (shown, and counted in the strict false-alarm rate). Leaks that
started before the scored period are **carried**: shown apart, never scored, and an alarm
they take is neither true nor false.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

ONSET_WINDOW = timedelta(days=7)
REPAIR_GRACE = timedelta(days=1)
ABRUPT_BUDGET = timedelta(days=2)
DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class Leak:
    link_id: str
    start: datetime
    end: datetime
    kind: str  # abrupt | incipient
    peak: datetime
    size_m3h: float | None = None  # known for synthetic leaks (peak flow)
    # the devices whose alarms can be this leak's (the zone it shows in); empty: any
    zones: frozenset[str] = frozenset()

    def seen_by(self, device_id: str) -> bool:
        return not self.zones or device_id in self.zones


@dataclass(frozen=True)
class Alarm:
    ts: datetime
    device_id: str = ""
    size_m3h: float | None = None
    message: str = ""


@dataclass
class LeakMatch:
    leak: Leak
    carried: bool = False
    found_at: datetime | None = None

    @property
    def delay(self) -> timedelta | None:
        return self.found_at - self.leak.start if self.found_at else None

    @property
    def goal_met(self) -> bool:
        """Abrupt: found within 2 days of its start. Incipient: found before its peak."""
        if self.found_at is None:
            return False
        if self.leak.kind == "abrupt":
            return self.found_at - self.leak.start <= ABRUPT_BUDGET
        return self.found_at <= self.leak.peak


@dataclass
class RuleScore:
    rule: str
    start: datetime
    end: datetime
    leaks: list[LeakMatch]
    verdicts: list[tuple[Alarm, str]] = field(default_factory=list)  # credited|repeat|false|carried

    def _n(self, verdict: str) -> int:
        return sum(v == verdict for _, v in self.verdicts)

    @property
    def true_positives(self) -> int:
        return self._n("credited")

    @property
    def false_positives(self) -> int:
        return self._n("false")

    @property
    def repeats(self) -> int:
        return self._n("repeat")

    @property
    def months(self) -> float:
        return (self.end - self.start).total_seconds() / 86400.0 / DAYS_PER_MONTH

    def per_month(self, count: int) -> float:
        return count / self.months if self.months > 0 else 0.0

    @property
    def scored(self) -> list[LeakMatch]:
        return [m for m in self.leaks if not m.carried]

    def goal(self, kind: str) -> tuple[int, int]:
        rows = [m for m in self.scored if m.leak.kind == kind]
        return sum(m.goal_met for m in rows), len(rows)

    def mean_time_to_detection_h(self) -> float | None:
        d = [m.delay.total_seconds() / 3600.0 for m in self.scored if m.delay is not None]
        return sum(d) / len(d) if d else None


Window = Callable[[Leak], tuple[datetime, datetime]]


def onset_window(window: timedelta = ONSET_WINDOW) -> Window:
    def span(lk: Leak) -> tuple[datetime, datetime]:
        return lk.start, min(lk.end + REPAIR_GRACE, max(lk.start, lk.peak) + window)

    return span


def battledim_window(lk: Leak) -> tuple[datetime, datetime]:
    return lk.start, lk.end


def score(
    rule: str,
    alarms: Sequence[Alarm],
    leaks: Sequence[Leak],
    start: datetime,
    end: datetime,
    window: Window,
    *,
    zoned: bool = True,
) -> RuleScore:
    """Give each alarm in ``[start, end]`` to at most one leak (see the module doc);
    ``zoned``: only to a leak its device sees."""
    if end <= start:
        raise ValueError(f"scored period must have end > start, got start={start} end={end}")
    # a leak repaired before the period is not part of it; one still running is carried
    live = [lk for lk in leaks if lk.start <= end and lk.end >= start]
    matches = [LeakMatch(lk, carried=lk.start < start) for lk in live]
    matches.sort(key=lambda m: (m.leak.kind != "abrupt", m.leak.start))
    spans = [window(m.leak) for m in matches]
    res = RuleScore(rule, start, end, matches)
    for a in sorted(alarms, key=lambda a: a.ts):
        if not start <= a.ts <= end:
            continue
        open_ = [
            i
            for i, (s, e) in enumerate(spans)
            if s <= a.ts <= e and (not zoned or matches[i].leak.seen_by(a.device_id))
        ]
        fresh = [i for i in open_ if matches[i].found_at is None]
        if fresh:
            m = matches[fresh[0]]
            m.found_at = a.ts
            res.verdicts.append((a, "carried" if m.carried else "credited"))
        elif open_:
            res.verdicts.append((a, "repeat"))
        else:
            res.verdicts.append((a, "false"))
    return res


def both_rules(
    alarms: Sequence[Alarm],
    leaks: Sequence[Leak],
    start: datetime,
    end: datetime,
    window: timedelta = ONSET_WINDOW,
) -> tuple[RuleScore, RuleScore]:
    """The onset-window rule and BattLeDIM's rule on the same alarms."""
    return (
        score("onset", alarms, leaks, start, end, onset_window(window)),
        score("battledim", alarms, leaks, start, end, battledim_window, zoned=False),
    )
