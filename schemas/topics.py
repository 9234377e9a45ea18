"""The MQTT topic scheme. Every topic string in the project is built here.

::

    akita/v1/<gateway>/telemetry   Batch, QoS 1, from the gateway
    akita/v1/<gateway>/status      GatewayStatus, retained (birth / Last Will)
    akita/v1/<gateway>/health      GatewayHealth, QoS 0
    akita/v1/<gateway>/meta        GatewayMeta, retained (device registry)
    akita/v1/<gateway>/cmd         Command, QoS 1, to the gateway, never retained
    akita/v1/<gateway>/cmd/result  CommandResult, QoS 1, from the gateway
    akita/v1/<gateway>/image       camera image (schemas.images), QoS 1, from the gateway
    akita/v1/deadletter/<gateway>  DeadLetter, from the cloud
    akita/v1/alerts/<kind>         Alert, from the cloud

The gateway's own prefix ``akita/v1/<gateway>/`` is what the broker ACL grants it.
``deadletter`` and ``alerts`` are reserved and can never be gateway ids.
"""

from __future__ import annotations

import re
from enum import StrEnum

ROOT = "akita/v1"
RESERVED = frozenset({"deadletter", "alerts"})
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    STATUS = "status"
    HEALTH = "health"
    META = "meta"
    CMD = "cmd"
    CMD_RESULT = "cmd/result"
    IMAGE = "image"


def check_gateway_id(gateway_id: str) -> str:
    if not _ID.match(gateway_id) or gateway_id in RESERVED:
        raise ValueError(f"gateway id {gateway_id!r} is not allowed in a topic")
    return gateway_id


def gateway_topic(gateway_id: str, channel: Channel) -> str:
    return f"{ROOT}/{check_gateway_id(gateway_id)}/{channel.value}"


def telemetry(gateway_id: str) -> str:
    return gateway_topic(gateway_id, Channel.TELEMETRY)


def status(gateway_id: str) -> str:
    return gateway_topic(gateway_id, Channel.STATUS)


def health(gateway_id: str) -> str:
    return gateway_topic(gateway_id, Channel.HEALTH)


def meta(gateway_id: str) -> str:
    return gateway_topic(gateway_id, Channel.META)


def command(gateway_id: str) -> str:
    return gateway_topic(gateway_id, Channel.CMD)


def command_result(gateway_id: str) -> str:
    return gateway_topic(gateway_id, Channel.CMD_RESULT)


def image(gateway_id: str) -> str:
    return gateway_topic(gateway_id, Channel.IMAGE)


def deadletter(gateway_id: str | None) -> str:
    return f"{ROOT}/deadletter/{gateway_id or '_unknown'}"


def alerts(kind: str) -> str:
    return f"{ROOT}/alerts/{kind}"


def subscription(channel: Channel) -> str:
    """Filter matching one channel of every gateway."""
    return f"{ROOT}/+/{channel.value}"


def shared(group: str, topic_filter: str) -> str:
    """MQTT 5 / Mosquitto 2 shared subscription: the group's members split the load."""
    return f"$share/{group}/{topic_filter}"


def parse(topic: str) -> tuple[str, Channel] | None:
    """``(gateway_id, channel)`` for a gateway topic, None for anything else."""
    parts = topic.split("/", 3)
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != ROOT or parts[2] in RESERVED:
        return None
    try:
        return parts[2], Channel(parts[3])  # "cmd/result" is one channel
    except ValueError:
        return None
