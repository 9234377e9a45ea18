"""The detector engine the ingest calls (contract E): route readings by kind, collect verdicts.

Per reading the hot path is: one dict lookup for the kind, the offline bookkeeping, and
the domain detector's ``feed_one`` with only the fields it uses. Time-based conditions
(offline, missing heartbeat, stale vehicle) come from :meth:`DetectorEngine.tick`.

:meth:`DetectorEngine.state` and :meth:`DetectorEngine.restore` carry what the detectors
learnt to another process (the detector tier's checkpoints, :mod:`cloud.detect.tier`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from cloud.detect.base import Detection, DeviceContext
from cloud.detect.callunit import CallUnitDetector
from cloud.detect.common import OfflineDetector, SeqGaps
from cloud.detect.config import DetectConfig
from cloud.detect.flood import FloodDetector
from cloud.detect.pump import PumpDetector
from cloud.detect.vehicle import VehicleDetector
from cloud.detect.water import WaterDetector
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
        self._offline_kinds = frozenset(config.common.offline_kinds)
        self.readings = 0
        self._wire()

    # the detectors whose state a checkpoint carries
    STATEFUL = ("water", "pump", "flood", "vehicle", "call_unit", "offline", "seq")

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
        water, pump, flood = self.water, self.pump, self.flood
        veh, cu = self.vehicle, self.call_unit

        def _water(out: list[Detection], r: Any, info: Any) -> None:
            v = r.values
            water.feed_one(out, r.device_id, r.ts, v.flow, v.pressure)

        def _flood(out: list[Detection], r: Any, info: Any) -> None:
            depth = r.values.depth
            if depth is not None:
                flood.feed_one(out, r.device_id, r.ts, depth)

        def _call(out: list[Detection], r: Any, info: Any) -> None:
            cu.feed_one(out, r.device_id, r.ts, r.values, info.poll_interval_s if info else None)

        self._route: dict[str, Callable[[list[Detection], Any, Any], None]] = {
            "water_block": _water,
            "manhole_pump": lambda out, r, info: pump.feed_one(out, r.device_id, r.ts, r.values),
            "flood_sensor": _flood,
            "vehicle": lambda out, r, info: veh.feed_one(out, r.device_id, r.ts, r.values),
            "call_unit": _call,
        }

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
        hb = self.config.call_unit.heartbeat_s
        for r in readings:
            info = devices.get(r.device_id)
            if r.kind in kinds:
                poll = info.poll_interval_s if info is not None else None
                if poll is None and r.kind == "call_unit":
                    poll = hb  # units only speak on heartbeat or events
                offline.seen(out, r.device_id, r.ts.timestamp(), r.ts, poll)
            route[r.kind](out, r, info)
        self.readings += len(readings)
        return out

    def tick(self, now: datetime) -> list[Detection]:
        """Time-based detections: offline devices, missing heartbeats, stale vehicles."""
        return self.offline.tick(now) + self.call_unit.tick(now) + self.vehicle.tick(now)

    def seq_gap(self, gateway_id: str, seq: int, ts: datetime | None = None) -> list[Detection]:
        """Tell the engine a gateway batch arrived; ``seq_gap`` detections when seqs skip."""
        return self.seq.observe(gateway_id, seq, ts)
