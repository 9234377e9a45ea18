"""When a camera is due: its normal cadence, or the fast one while its site is at 注意+.

The gateway learns a site's stage from a local rule on the site's own flood sensors (the
downlink carries no stages yet): a depth at or above ``caution_cm`` puts the site at
注意, and it stays there until every sensor of the site is ``hysteresis_cm`` below it, so
a depth hovering around the threshold does not flap the cadence.
"""

from __future__ import annotations

from edge.cameras.config import Camera


class SiteStages:
    def __init__(self, caution_cm: float, hysteresis_cm: float) -> None:
        self.caution_cm = caution_cm
        self.hysteresis_cm = hysteresis_cm
        self._depths: dict[str, dict[str, float]] = {}  # site -> sensor -> last depth
        self._alert: set[str] = set()

    def observe(self, site: str, sensor_id: str, depth_cm: float) -> None:
        depths = self._depths.setdefault(site, {})
        depths[sensor_id] = depth_cm
        deepest = max(depths.values())
        if deepest >= self.caution_cm:
            self._alert.add(site)
        elif deepest < self.caution_cm - self.hysteresis_cm:
            self._alert.discard(site)

    def at_caution(self, site: str) -> bool:
        return site in self._alert


def interval_s(cam: Camera, stages: SiteStages) -> float:
    return cam.alert_interval_s if stages.at_caution(cam.site) else cam.interval_s


def due(cam: Camera, stages: SiteStages, last_taken: float | None, now: float) -> bool:
    """True when a snapshot is due; a site going to 注意 shortens the wait at once."""
    return last_taken is None or now - last_taken >= interval_s(cam, stages)
