"""``[opendata]`` settings: which device kinds the public endpoints may show, and the bus
operator's GTFS feed with its own licence."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.opendata.licence import feed_licence
from schemas.devices import DeviceKind
from schemas.kinds import KINDS

# Each kind declares whether open data may show it (Kind.public): call units sit in the
# homes of elderly residents living alone, so their ids, positions and areas are
# personal data and stay off every public page unless a city opts in.
DEFAULT_PUBLIC_KINDS: tuple[DeviceKind, ...] = tuple(
    DeviceKind(name) for name, kind in KINDS.items() if kind.public
)


class OpendataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_kinds: list[DeviceKind] = Field(
        default_factory=lambda: list(DEFAULT_PUBLIC_KINDS),
        description=(
            "Device kinds whose ids, positions and areas public endpoints (open data, "
            "CAP feed, citizen pages) may show; default every kind declared public "
            "(all but call_unit)"
        ),
    )
    gtfs_static: str | None = Field(
        default=None,
        description=(
            "Zip or directory of the bus operator's GTFS feed; unset: AKITA_GTFS_STATIC, "
            'else the bundled sample feed; "none": no trip matching'
        ),
    )
    gtfs_licence: str | None = Field(
        default=None,
        description=(
            "SPDX id of the GTFS feed's licence (e.g. CC-BY-SA-3.0), shown wherever the "
            "feed is served; unset: AKITA_GTFS_LICENCE, else the city's CC BY 4.0"
        ),
    )
    gtfs_licence_url: str | None = Field(
        default=None, description="Licence URL; needed only for an id the code does not know"
    )
    gtfs_attribution: str | None = Field(
        default=None, max_length=300, description="Attribution text of the operator's feed"
    )

    @model_validator(mode="after")
    def _known_licence(self) -> OpendataSettings:
        # refuse at load, naming the setting, rather than on the first feed request
        try:
            feed_licence(self.gtfs_licence, url=self.gtfs_licence_url)
        except ValueError as exc:
            raise ValueError(
                str(exc).replace("AKITA_GTFS_LICENCE", "opendata.gtfs_licence")
            ) from None
        return self
