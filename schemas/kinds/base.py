"""What a device kind is, declared once: its values model and the facts every layer reads.

A kind module in this folder (or a plugin package, see :mod:`schemas.kinds`) defines its
values model (FIWARE attribute names and UN/CEFACT unit codes in each field's JSON
Schema) and one :class:`Kind`. The edge checks register maps against the values model,
the cloud derives its decoders, line formatters, routing, notification domain and
offline detection from it, and no layer keeps a table of kinds of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# a kind's name is a measurement name, a tag value and a relational column (String(32))
KIND_NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}\Z")


class Offline(StrEnum):
    """When a device of the kind counts as offline (the cloud's offline detector)."""

    POLLED = "polled"  # after missed polls (DeviceInfo.poll_interval_s)
    EVENTS = "events"  # speaks on events and heartbeats: its detector gives the period
    NEVER = "never"


class Via(StrEnum):
    """How a kind's readings reach the cloud: which layer has to know the kind at all."""

    GATEWAY = "gateway"  # an edge gateway polls or listens to it (deploy/edge/*.toml)
    LPWA = "lpwa"  # a LoRaWAN network server publishes it (cloud/lpwa, docs/lpwa.md)


def quantity(unit: str, code: str, fiware: str | None, *, ge: float, le: float, desc: str) -> Any:
    """A measured quantity: optional (report-on-change sends only what changed), bounded."""
    return Field(
        default=None,
        ge=ge,
        le=le,
        description=desc,
        json_schema_extra={"unit": unit, "unitCode": code, "fiware": fiware},
    )


class Values(BaseModel):
    """Base of every values model: frozen, and every field optional (None = not sent)."""

    # forbid: an unknown field is a wiring mistake at the edge, never silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=True)

    def present(self) -> dict[str, Any]:
        """The fields this reading actually carries (None means 'not reported')."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Kind:
    """One device kind. ``name`` is the wire's ``kind`` and the InfluxDB measurement."""

    name: str
    values: type[Values]
    title: str  # for people: dashboards, the console, docs
    domain: str  # which staff get its alerts: water, sewer, flood, fleet, care, ...
    fiware: str  # the FIWARE Smart Data Model entity type it maps to
    offline: Offline = Offline.POLLED
    public: bool = True  # open data may publish it (call units: never, residents' homes)
    headline: str | None = None  # the field a list or a chart shows first
    # a kind that never passes a gateway needs no gateway driver or sample gateway config
    via: Via = Via.GATEWAY

    def __post_init__(self) -> None:
        if not KIND_NAME.match(self.name):
            raise ValueError(f"kind name {self.name!r} is not [a-z][a-z0-9_]{{1,31}}")
        if self.headline is not None and self.headline not in self.values.model_fields:
            raise ValueError(f"kind {self.name}: headline {self.headline!r} is not a field")
