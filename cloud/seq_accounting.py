"""Per-gateway seq accounting: duplicates, gaps, conflicts, resets and rollbacks.

A gateway numbers its batches (``seq``, one more per batch, kept across restarts by
the edge spool). From the seqs the ingest tells a re-send (same seq, same content) from
a conflicting reuse, a skipped seq (a gap) from a late one, a documented counter reset
(after a birth with a new boot id) from a replay.

Exact in both ways a worker runs:

- alone on a plain subscription, it sees every batch of a gateway and judges each seq
  in memory as it arrives (:meth:`SeqAccounts.check`);
- in a shared-subscription group (:attr:`SeqAccounts.shared`), the broker may hand a
  gateway's batches to any member, so no worker judges gaps from its part. Each records
  the seqs it stored (:meth:`SeqAccounts.record`) for the relational ledger that all
  workers share, and every worker sweeps that ledger now and then
  (:mod:`cloud.seq_ledger`): once a seq is older than a grace period, the seqs missing
  below it are gaps and seqs recorded twice are duplicates. A batch a worker stores
  twice is still seen as a duplicate at once (and not handed on again).

This module keeps the in-memory side; :class:`cloud.registry.Registry` calls it under
its lock and writes the counters through to the ``gateways`` rows.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from cloud.seq_ledger import SEQ_WINDOW, SeqSettled

log = logging.getLogger(__name__)

MAX_PENDING_SEQS = 500_000  # stored seqs held for the ledger while the database is down


class SeqVerdict(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"  # same seq, same content: a re-send, harmless
    CONFLICT = "conflict"  # same seq, different content: refused
    RESET = "reset"  # counter restarted after a birth with a new boot id
    ROLLBACK = "rollback"  # seq went back beyond any re-send, no new boot id: refused


@dataclass(frozen=True)
class SeqCheck:
    verdict: SeqVerdict
    missing: int = 0  # batches skipped before this one (new gaps)
    filled: bool = False  # this batch fills an earlier gap


class SeqCounters(Protocol):
    """The per-gateway counters the registry shows (``GatewayInfo``)."""

    gateway_id: str
    last_seq: int
    gaps: int
    duplicates: int
    boot_id: str | None


@dataclass
class _SeqState:
    last: int = -1
    seen: OrderedDict[int, tuple[object, ...]] = field(default_factory=OrderedDict)
    missing: set[int] = field(default_factory=set)
    reset_allowed: bool = False  # a birth brought a new boot id: the seq may restart


class SeqAccounts:
    """The seq state of every gateway; not thread-safe (the registry holds its lock)."""

    def __init__(self) -> None:
        self._state: dict[str, _SeqState] = {}
        self.shared = False  # in a shared group: gaps are settled through the ledger
        self._pending: list[tuple[str, int]] = []
        self._dropped = 0
        self.duplicates_delta: dict[str, int] = {}  # shared: not yet added to the rows

    def raise_last(self, gateway_id: str, last_seq: int) -> None:
        """The group's (or the database's) last seq of the gateway's current counter."""
        state = self._state.setdefault(gateway_id, _SeqState())
        state.last = max(state.last, last_seq)

    def last(self, gateway_id: str) -> int:
        state = self._state.get(gateway_id)
        return state.last if state is not None else -1

    def new_boot(self, gateway_id: str, *, known_boot: bool) -> int:
        """A birth brought a new boot id: the next batch may go back, once. Returns the
        last seq of the old counter."""
        state = self._state.setdefault(gateway_id, _SeqState())
        state.reset_allowed = known_boot or state.last >= 0
        return state.last

    def check(self, g: SeqCounters, seq: int, fingerprint: tuple[object, ...]) -> SeqCheck:
        """Classify a batch of gateway ``g`` by its seq and remember it (a CONFLICT is not
        remembered); updates ``g``'s counters.

        ``fingerprint`` summarises the batch content so that a re-send (same seq, same
        content) is told from a conflicting reuse of a seq. Shared: only what this worker
        saw itself is judged here; gaps, and seqs a peer stored too, are left to the sweep.
        """
        state = self._state.setdefault(g.gateway_id, _SeqState())
        seen = state.seen.get(seq)
        if seen is not None and not (state.reset_allowed and seq < state.last):
            if seen != fingerprint:
                return SeqCheck(SeqVerdict.CONFLICT)
            check = SeqCheck(SeqVerdict.DUPLICATE)
        elif state.reset_allowed and seq <= state.last:
            check = SeqCheck(SeqVerdict.RESET)  # announced by a birth with a new boot id
        elif state.last - seq >= SEQ_WINDOW:
            # far behind anything a gateway or the broker re-sends, and no new boot
            # id: a replay, or a second device using this gateway's name
            return SeqCheck(SeqVerdict.ROLLBACK)
        elif self.shared:
            # a peer may have the seqs in between (or this one): the sweep settles them
            check = SeqCheck(SeqVerdict.NEW)
        elif state.last < 0 or seq == state.last + 1:
            check = SeqCheck(SeqVerdict.NEW)
        elif seq > state.last:
            check = SeqCheck(SeqVerdict.NEW, missing=seq - state.last - 1)
        elif seq in state.missing:
            check = SeqCheck(SeqVerdict.NEW, filled=True)
        else:
            # less than SEQ_WINDOW below the last seq, not remembered: seen before this
            # worker restarted (the broker redelivers what was not acknowledged)
            check = SeqCheck(SeqVerdict.DUPLICATE)
        if check.verdict is not SeqVerdict.DUPLICATE:
            state.reset_allowed = False  # the counter went on, or restarted: once
        self._remember(g, state, seq, fingerprint, check)
        return check

    def _remember(
        self,
        g: SeqCounters,
        state: _SeqState,
        seq: int,
        fingerprint: tuple[object, ...],
        check: SeqCheck,
    ) -> None:
        gateway_id = g.gateway_id
        if check.verdict is SeqVerdict.DUPLICATE:
            g.duplicates += 1
            if self.shared:
                self.duplicates_delta[gateway_id] = self.duplicates_delta.get(gateway_id, 0) + 1
        elif check.verdict is SeqVerdict.RESET:
            log.warning(
                "gateway_seq_reset gateway=%s from=%d to=%d boot_id=%s",
                gateway_id,
                state.last,
                seq,
                g.boot_id,
            )
            if not self.shared:  # shared: the sweep restarts the gap count
                g.gaps = 0
            state.missing.clear()
            state.seen.clear()
            state.last = seq
            g.last_seq = seq
        else:
            if check.filled:
                state.missing.discard(seq)
            if check.missing:
                # remember what is missing, bounded: a huge jump is counted, not listed
                start = max(state.last + 1, seq - SEQ_WINDOW)
                state.missing.update(range(start, seq))
                if len(state.missing) > SEQ_WINDOW:
                    state.missing = set(sorted(state.missing)[-SEQ_WINDOW:])
                log.warning(
                    "gateway_seq_gap gateway=%s missing=%d before_seq=%d",
                    gateway_id,
                    check.missing,
                    seq,
                )
            state.last = max(state.last, seq)
            g.gaps = g.gaps + check.missing - (1 if check.filled else 0)
        state.seen[seq] = fingerprint
        state.seen.move_to_end(seq)
        while len(state.seen) > SEQ_WINDOW:
            state.seen.popitem(last=False)
        g.last_seq = max(g.last_seq, seq) if check.verdict is not SeqVerdict.RESET else seq

    # --- shared group: what goes to the ledger ----------------------------------------

    def record(self, gateway_id: str, seq: int) -> None:
        """Shared: a batch is durably stored; its seq waits for the next flush."""
        self._pending.append((gateway_id, seq))
        if len(self._pending) > MAX_PENDING_SEQS * 1.1:  # trim now and then
            self._trim()

    def take(self) -> tuple[list[tuple[str, int]], dict[str, int], int]:
        """For a flush: the seqs stored, duplicates seen, seqs dropped since the last."""
        taken = (self._pending, self.duplicates_delta, self._dropped)
        self._pending, self.duplicates_delta, self._dropped = [], {}, 0
        return taken

    def give_back(
        self, seqs: list[tuple[str, int]] | None = None, duplicates: dict[str, int] | None = None
    ) -> None:
        """A flush failed: keep what it took for the next one (oldest first, bounded)."""
        if seqs:
            self._pending[:0] = seqs
            self._trim()
        for gateway_id, n in (duplicates or {}).items():
            self.duplicates_delta[gateway_id] = self.duplicates_delta.get(gateway_id, 0) + n

    def _trim(self) -> None:
        excess = len(self._pending) - MAX_PENDING_SEQS
        if excess > 0:
            del self._pending[:excess]
            self._dropped += excess


def log_settled(settled: list[SeqSettled]) -> None:
    """One line per reset, gap and filled gap a ledger sweep found."""
    for s in settled:
        if s.reset_from is not None:
            log.warning(
                "gateway_seq_reset gateway=%s from=%d to=%d", s.gateway_id, s.reset_from, s.start
            )
        if s.missing:
            log.warning(
                "gateway_seq_gap gateway=%s missing=%d first_missing=%s checked_from=%d "
                "checked_to=%d",
                s.gateway_id,
                s.missing,
                s.first_missing,
                s.start,
                s.end,
            )
        if s.filled:
            log.info("gateway_seq_gap_filled gateway=%s filled=%d", s.gateway_id, s.filled)
