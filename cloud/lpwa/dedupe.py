"""Which uplinks are new: by ``deduplicationId`` and by (devEui, fCnt) within a window.

ChirpStack merges one frame heard by several radio gateways into one event, yet the same
frame still reaches an application more than once: a meter repeating unconfirmed
uplinks (NbTrans > 1, same fCnt, new deduplicationId), QoS 1 redelivery and a network
server replaying after a restart (same deduplicationId, possibly hours late).

Time here is the network server's reception time of the uplinks (stream time), never the
wall clock, so a replay of last week and a simulated week behave as live data does. The
window must exceed the latest an uplink may arrive (6 h in the pilot; default 8 h).
Past the window, or after a restart of the worker, the store is still idempotent (a
reading's key is the meter and the hour it describes), so a repeat overwrites its own
points and is never counted twice; the window only saves the writes and counts repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_WINDOW_S = 8 * 3600.0


class Verdict(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    COUNTER_BACK = "counter_back"  # new, but fCnt went back without a join: flagged


@dataclass
class _Meter:
    # fCnt -> (reception time, payload hash): the same fCnt with other data is a new frame
    frames: dict[int, tuple[float, int]] = field(default_factory=dict)
    newest_fcnt: int = -1  # fCnt of the uplink with the newest reception time
    newest_s: float = float("-inf")


class Dedupe:
    """Not thread-safe: one worker thread judges its uplinks in arrival order."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        self.window_s = window_s
        self._ids: dict[str, float] = {}  # deduplicationId -> reception time (insertion order)
        self._meters: dict[str, _Meter] = {}
        self._now = float("-inf")  # newest reception time seen
        self._since_prune = 0

    def judge(
        self, dedup_id: str, dev_eui: str, f_cnt: int, received_s: float, data: bytes
    ) -> Verdict:
        """Judge one uplink (and remember it unless it is a duplicate). A repeat has the
        same fCnt *and* payload: a meter that restarted its counter without a join sends
        other data under a used fCnt, which must not be dropped as a repeat."""
        if dedup_id in self._ids:
            return Verdict.DUPLICATE
        meter = self._meters.setdefault(dev_eui, _Meter())
        seen = meter.frames.get(f_cnt)
        digest = hash(data)
        if seen is not None and seen[1] == digest and abs(seen[0] - received_s) <= self.window_s:
            return Verdict.DUPLICATE
        self._ids[dedup_id] = received_s
        meter.frames[f_cnt] = (received_s, digest)
        verdict = Verdict.NEW
        if received_s > meter.newest_s:
            # a lower fCnt received *later* is a counter going back; a lower fCnt received
            # earlier is a late uplink arriving now, which is normal
            if f_cnt < meter.newest_fcnt:
                verdict = Verdict.COUNTER_BACK
            meter.newest_fcnt, meter.newest_s = f_cnt, received_s
        if received_s > self._now:
            self._now = received_s
        self._since_prune += 1
        if self._since_prune >= 4096:
            self._since_prune = 0
            self._prune()
        return verdict

    def joined(self, dev_eui: str) -> None:
        """A join: the meter's frame counter restarts, so forget its counters."""
        self._meters.pop(dev_eui, None)

    def _prune(self) -> None:
        horizon = self._now - self.window_s
        self._ids = {k: t for k, t in self._ids.items() if t >= horizon}
        for meter in self._meters.values():
            meter.frames = {f: s for f, s in meter.frames.items() if s[0] >= horizon}

    def __len__(self) -> int:
        return len(self._ids)
