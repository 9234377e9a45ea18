"""How the gateway logs, and keeping third-party noise out of its journal.

One event per line, key=value, on stdout: journald stamps the time and the unit, and
the cloud's processes use the same ``level=… logger=…`` keys (``cloud/logs.py``).

The agent reports device trouble itself, once per outage (see :mod:`edge.agent`).
pymodbus logs every timeout at error level, and asyncio logs a full traceback each
time pymodbus's framer chokes on line noise; both would repeat every poll.
"""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "level=%(levelname)s logger=%(name)s %(message)s"


class _PymodbusFramerNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        msg = record.getMessage()
        return not ("data_received" in msg and "pymodbus" in msg)


_installed = False


def quiet_third_party() -> None:
    """Idempotent; leaves alone a pymodbus logger someone configured on purpose."""
    global _installed
    if _installed:
        return
    _installed = True
    for name in ("pymodbus", "pymodbus.logging"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.CRITICAL)
    logging.getLogger("asyncio").addFilter(_PymodbusFramerNoise())


def setup_logging(level: str) -> None:
    """Replace the root handlers (a second call does not double every line)."""
    logging.basicConfig(stream=sys.stdout, level=level.upper(), format=LOG_FORMAT, force=True)
    quiet_third_party()
