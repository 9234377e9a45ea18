"""How the cloud's processes log: one event per line, key=value, on stderr.

Every ``akita cloud`` process (API and alerts, ingest, detection tiers, the LPWA worker)
logs through :func:`setup_logging`, so one log shipper pattern parses them all.
"""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Replace the root handlers (uvicorn's loggers propagate to them, so its access
    lines take the same shape instead of its own colourised format)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
