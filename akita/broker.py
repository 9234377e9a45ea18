"""An embedded MQTT broker (amqtt) so the demo needs no Mosquitto install.

Production and the test suite use Mosquitto (see ``deploy/mosquitto``). amqtt speaks
MQTT 3.1.1 without shared subscriptions, so the demo's single ingest worker
subscribes without a ``$share`` group.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from amqtt.broker import Broker


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """Loopback-only, anonymous broker for the demo. ``await start()``, ``await stop()``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._broker: Broker | None = None

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    async def start(self) -> None:
        # amqtt logs every connection at INFO; the demo prints its own summary instead.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = Broker(self._config())
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
