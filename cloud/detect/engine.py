"""The detector engine the ingest calls (contract E): route readings by kind, collect verdicts.

Per reading the hot path is: one dict lookup for the kind, the offline bookkeeping, and
the domain detector's ``feed_one`` with only the fields it uses. The routes come from the
kinds' detector parts (:mod:`cloud.detect.parts`, one module per kind in
``cloud/detect/kinds/``); a reading of a kind without one is counted and logged once,
never an error. Quality flags of any kind go to the ``bad_value`` detector. Time-based conditions
(offline, missing heartbeat, stale vehicle) come from :meth:`DetectorEngine.tick`.

:meth:`DetectorEngine.state` and :meth:`DetectorEngine.restore` carry what the detectors
learnt to another process (the detector tier's checkpoints, :mod:`cloud.detect.tier`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cloud.detect.base import Detection, DeviceContext
from cloud.detect.callunit import CallUnitDetector
from cloud.detect.common import OfflineDetector, SeqGaps
from cloud.detect.config import DetectConfig
from cloud.detect.flood import FloodDetector
from cloud.detect.parts import Route, parts
from cloud.detect.pump import PumpDetector
from cloud.detect.quality import BadValueDetector
from cloud.detect.vehicle import VehicleDetector
from cloud.detect.water import WaterDetector
from schemas.kinds import KINDS, Offline
from schemas.wire import Reading

log = logging.getLogger(__name__)


class DetectorEngine:
    """All detectors, fed from the ingest stream.

    ``sites`` (device id -> facts such as flood stage depths or pump set points) and
    ``routes`` (route id -> [[lat, lon], ...]) extend what ``config`` carries; the
    evaluation passes the export's devices.json here.
    """

    def __init__(
        self,
        config: DetectConfig | None = None,
        *,
        sites: Mapping[str, Mapping[str, Any]] | None = None,
        routes: Mapping[str, Sequence[Sequence[float]]] | None = None,
    ) -> None:
        self.config = config = config or DetectConfig()
        self.sites: dict[str, Mapping[str, Any]] = {**config.sites, **(sites or {})}
        self.water = WaterDetector(config.water)
        self.pump = PumpDetector(config.pump, self.sites)
        self.flood = FloodDetector(config.flood, self.sites)
        self.vehicle = VehicleDetector(config.vehicle, routes, self.sites)
        self.call_unit = CallUnitDetector(config.call_unit, config.common)
        self.offline = OfflineDetector(config.common)
        self.seq = SeqGaps()
        self.bad_value = BadValueDetector(config.quality)
        self.plugins: dict[str, Any] = {}  # state a plugin kind's detector keeps, by kind
        self._offline_kinds = frozenset(config.common.offline_kinds)
        self.readings = 0
        self.unrouted: dict[str, int] = {}  # readings of kinds no detector part takes
        self._wire()

    # the detectors whose state a checkpoint carries
    STATEFUL = (
        "water",
        "pump",
        "flood",
        "vehicle",
        "call_unit",
        "offline",
        "seq",
        "bad_value",
        "plugins",
    )

    def state(self) -> dict[str, Any]:
        """What the detectors learnt (picklable): baselines, counters, stages, open
        conditions, offline timers. The objects themselves: pickle it before feeding on."""
        return {**{name: getattr(self, name) for name in self.STATEFUL}, "readings": self.readings}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` of another engine. This engine's settings and
        sites stay in force (a changed threshold applies from now on)."""
        for name in self.STATEFUL:
            if name in state:
                setattr(self, name, state[name])
        for detector in (self.water, self.pump, self.flood, self.vehicle, self.call_unit):
            cfg = getattr(self.config, detector.name, None)
            if cfg is not None and hasattr(detector, "cfg"):
                detector.cfg = cfg
            if hasattr(detector, "sites"):
                detector.sites = self.sites
        self.readings = int(state.get("readings", 0))
        self._wire()

    def _wire(self) -> None:
        """The per-kind routes, bound to the current detector objects."""
        registered = parts()
        self._route: dict[str, Route] = {
            kind: part.route(self) for kind, part in registered.items() if kind in KINDS
        }
        # how long a device of an event-driven kind may be silent when it has no poll interval
        self._event_period: dict[str, float] = {
            kind: part.event_period_s(self.config)
            for kind, part in registered.items()
            if part.event_period_s is not None
            and kind in KINDS
            and KINDS[kind].offline is Offline.EVENTS
        }
        self._ticks = [
            part.tick for kind, part in registered.items() if part.tick and kind in KINDS
        ]

    def set_sites(self, sites: Mapping[str, Mapping[str, Any]]) -> None:
        """Add per-device facts (before the devices' first readings)."""
        self.sites.update(sites)

    def set_routes(self, routes: Mapping[str, Sequence[Sequence[float]]]) -> None:
        self.vehicle.set_routes(routes)

    def feed(self, readings: Sequence[Reading], devices: DeviceContext) -> list[Detection]:
        """Consume readings (time order per device); return the detections that changed."""
        out: list[Detection] = []
        route = self._route
        offline = self.offline
        kinds = self._offline_kinds
        event_period = self._event_period
        bad = self.bad_value
        watched = bad.invalid
        for r in readings:
            info = devices.get(r.device_id)
            kind = r.kind
            if kind in kinds:
                poll = info.poll_interval_s if info is not None else None
                if poll is None:
                    poll = event_period.get(kind)  # units that speak on heartbeat or events
                offline.seen(out, r.device_id, r.ts.timestamp(), r.ts, poll)
            if r.quality is not None or r.device_id in watched:
                bad.feed_one(out, r)
            fn = route.get(kind)
            if fn is None:
                self._unrouted(kind)
                continue
            fn(out, r, info)
        self.readings += len(readings)
        return out

    def _unrouted(self, kind: str) -> None:
        n = self.unrouted.get(kind, 0)
        if n == 0:
            log.warning("detect_no_route kind=%s reason=no detector part for this kind", kind)
        self.unrouted[kind] = n + 1

    def tick(self, now: datetime) -> list[Detection]:
        """Time-based detections: offline devices, missing heartbeats, stale vehicles."""
        out = (
            self.offline.tick(now)
            + self.call_unit.tick(now)
            + self.vehicle.tick(now)
            + self.bad_value.tick(now)
        )
        for part_tick in self._ticks:
            out += part_tick(self, now)
        return out

    def seq_gap(self, gateway_id: str, seq: int, ts: datetime | None = None) -> list[Detection]:
        """Tell the engine a gateway batch arrived; ``seq_gap`` detections when seqs skip."""
        return self.seq.observe(gateway_id, seq, ts)
