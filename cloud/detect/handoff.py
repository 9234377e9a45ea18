"""What an ingest worker hands the detector tier after a durable write, and where.

After its write, a worker publishes each stored batch, split by partition, to
``akita/v1/_detect/<partition>`` (QoS 1, before the original message's PUBACK on the same
connection, so an acknowledged batch is always handed off). A gateway id never starts
with ``_``, so these topics can never be a gateway's.

Each partition that holds any device of the gateway gets a message for every batch of
the gateway, empty when the batch has none of its devices: a partition then sees every
seq of the gateway, and its consumer can put the batches of several ingest workers back
in seq order and drop repeats (:class:`cloud.detect.tier.SeqOrder`).

The payload is JSON: ``{"reset": bool, "stored_at": unix s, "batch": <wire Batch>}``;
``reset`` says the ingest accepted the batch's seq as a documented counter restart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cloud.detect.partitions import partition_of
from schemas import Batch, WireError, topics
from schemas.codec import describe

TOPIC_ROOT = f"{topics.ROOT}/_detect"
SUBSCRIPTION = f"{TOPIC_ROOT}/+"


def topic(partition: int) -> str:
    return f"{TOPIC_ROOT}/{partition}"


def partition_of_topic(name: str) -> int | None:
    head, _, tail = name.rpartition("/")
    return int(tail) if head == TOPIC_ROOT and tail.isdigit() else None


@dataclass(frozen=True)
class Handoff:
    """One stored batch (only one partition's readings of it)."""

    batch: Batch
    reset: bool
    stored_at: float


def split(batch: Batch, partitions: int, owned: Mapping[str, str]) -> dict[int, list[Any]]:
    """The batch's readings by partition, with an entry (maybe empty) for every partition
    that holds one of the gateway's devices (``owned``: the gateway's ``{device: kind}``)."""
    parts: dict[int, list[Any]] = {partition_of(d, partitions): [] for d in owned}
    for r in batch.readings:
        parts.setdefault(partition_of(r.device_id, partitions), []).append(r)
    return parts


def encode(batch: Batch, readings: list[Any], *, reset: bool, stored_at: float) -> bytes:
    part = batch.model_copy(update={"readings": readings, "statuses": []})
    head = f'{{"reset":{"true" if reset else "false"},"stored_at":{stored_at!r},"batch":'
    return head.encode() + part.model_dump_json().encode() + b"}"


def decode(payload: bytes) -> Handoff:
    """Raises :class:`WireError` naming what is wrong."""
    cut = payload.find(b',"batch":')
    if cut > 0 and payload.endswith(b"}"):
        # as encode() writes it: the batch straight from its bytes (a third faster than
        # parsing the JSON into dicts first)
        try:
            head = json.loads(payload[:cut] + b"}")
            batch = Batch.model_validate_json(payload[cut + 9 : -1])
        except (ValueError, ValidationError):
            pass  # the slow path below names what is wrong
        else:
            if isinstance(head, dict) and isinstance(head.get("stored_at"), int | float):
                return Handoff(batch, head.get("reset") is True, float(head["stored_at"]))
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise WireError(f"handoff: not JSON ({exc})", field="handoff") from exc
    if not isinstance(data, dict) or not isinstance(data.get("batch"), dict):
        raise WireError("handoff: expected an object with a 'batch' object", field="batch")
    stored_at = data.get("stored_at")
    if not isinstance(stored_at, int | float):
        raise WireError(f"stored_at: expected a number (got {stored_at!r})", field="stored_at")
    try:
        batch = Batch.model_validate(data["batch"])
    except ValidationError as exc:
        raise WireError(f"batch: {describe(exc)}", field="batch") from exc
    return Handoff(batch=batch, reset=data.get("reset") is True, stored_at=float(stored_at))
