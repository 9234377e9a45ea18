"""Settings of the public citizen pages (the ``[citizen]`` section of the cloud settings).

The limits live here rather than in a reverse proxy so that they hold for every deployment
and survive restarts: the counters are rows in the relational database.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_CALLING_CODE = re.compile(r"^\+[1-9]\d{0,3}$")


class CitizenSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirmations_per_address_per_hour: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Confirmation messages to one e-mail address or phone number per hour",
    )
    confirmations_per_ip_per_hour: int = Field(
        # mobile carriers put many residents behind one address (CGNAT): not too low
        default=30,
        ge=1,
        le=10_000,
        description="Confirmation messages requested from one client IP address per hour",
    )
    unconfirmed_ttl_h: float = Field(
        default=24.0, gt=0, le=24 * 30, description="Unconfirmed subscriptions are deleted after"
    )
    sms_countries: list[str] = Field(
        default_factory=lambda: ["+81"],
        min_length=1,
        description="Country calling codes SMS may be sent to (premium-rate abroad otherwise)",
    )
    max_form_bytes: int = Field(
        default=64 * 1024,
        ge=4 * 1024,
        le=1024 * 1024,
        description="Largest body of a text-only form (subscribe, change, confirm)",
    )

    @field_validator("sms_countries")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not _CALLING_CODE.match(code):
                raise ValueError(f"{code!r} is not a country calling code such as '+81'")
        return value
