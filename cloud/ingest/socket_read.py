"""Reading every MQTT message already waiting, for the workers that handle a batch per
turn (the gateway ingest, the LPWA worker)."""

from __future__ import annotations

from collections.abc import Sized

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode


def read_waiting(client: mqtt.Client, inbox: Sized, most: int) -> MQTTErrorCode:
    """Read up to ``most`` messages already waiting in the socket; ``inbox`` is what the
    client's on_message appends to. ``Client.loop`` reads one packet per call, after a
    select(): under load that select() per message cost more than handling it."""
    before = len(inbox)
    for _ in range(most):
        rc = client.loop_read()
        if rc != mqtt.MQTT_ERR_SUCCESS:
            return rc
        if len(inbox) == before:  # nothing waiting (or an ack, not a message)
            break
        before = len(inbox)
    return MQTTErrorCode.MQTT_ERR_SUCCESS
