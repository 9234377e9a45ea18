"""Storm protection: a per-recipient sliding-window rate limit and a per-alert cap.

Both count messages we decided to send (not successful deliveries), keyed by the
recipient hash, in the time base of the alert changes (simulated time in a scenario).
"""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import datetime

from cloud.notify.config import RateLimit

RATE_LIMITED = "rate_limit"
ALERT_CAP = "alert_cap"


class Limiter:
    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._sent: dict[str, deque[float]] = defaultdict(deque)
        self._per_alert: dict[tuple[str, str], int] = defaultdict(int)

    def admit(self, recipient: str, alert_id: str, at: datetime) -> str | None:
        """None when the message may go (and count it), else the reason it may not."""
        if self._per_alert[(alert_id, recipient)] >= self.limit.per_alert_cap:
            return ALERT_CAP
        now = at.timestamp()
        window = self._sent[recipient]
        while window and window[0] <= now - self.limit.window_s:
            window.popleft()
        if len(window) >= self.limit.max_messages:
            return RATE_LIMITED
        window.append(now)
        self._per_alert[(alert_id, recipient)] += 1
        return None

    def forget_alert(self, alert_id: str) -> None:
        for key in [k for k in self._per_alert if k[0] == alert_id]:
            del self._per_alert[key]
