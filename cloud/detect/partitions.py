"""Detector partitions: which partition a device is in, which instance owns a partition.

- A device's partition is ``crc32(device_id) mod P``: stable across processes, hosts and
  Python versions (the built-in ``hash`` of a string is salted per process). P is fixed
  for a deployment (1 for a city, 64 for a prefecture): changing it moves devices, and so
  their detector state, between partitions.
- Partitions are assigned to the live detector instances by rendezvous (highest random
  weight) hashing: each partition goes to the instance with the highest
  ``weight(instance, partition)``. When an instance joins or leaves, only the partitions
  it wins or held move, about P/N of them; every instance computes the same assignment
  from the same member list, so no coordinator is needed.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Sequence


def partition_of(device_id: str, partitions: int) -> int:
    """The partition of ``device_id`` among ``partitions``."""
    return zlib.crc32(device_id.encode()) % partitions


def weight(member: str, partition: int) -> int:
    """Rendezvous weight of ``member`` for ``partition`` (64 bits of BLAKE2b)."""
    digest = hashlib.blake2b(f"{member}/{partition}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(partition: int, members: Iterable[str]) -> str | None:
    """The member that owns ``partition`` (None when there is no member)."""
    return max(members, key=lambda m: (weight(m, partition), m), default=None)


def assign(partitions: int, members: Sequence[str]) -> dict[str, list[int]]:
    """Every member's partitions (members without any get an empty list)."""
    owned: dict[str, list[int]] = {m: [] for m in members}
    for p in range(partitions):
        winner = owner(p, members)
        if winner is not None:
            owned[winner].append(p)
    return owned
