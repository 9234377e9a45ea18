"""The alert record, as stored by the cloud and published on ``akita/v1/alerts/<kind>``.

Severities follow CAP 1.2 (``Extreme``, ``Severe``, ``Moderate``, ``Minor``).
FIWARE mapping: Alert (dataModel.Alert): ``kind`` -> ``subCategory``,
``severity`` -> ``severity`` (lower-cased there), ``started_at`` -> ``dateIssued``,
``resolved_at`` -> ``validTo``, ``device_id`` -> ``alertSource``, ``area`` ->
``address.addressLocality``, ``lat``/``lon`` -> ``location``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.wire import UtcDatetime


class Severity(StrEnum):
    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"

    @property
    def rank(self) -> int:
        """Higher is worse; lets callers compare severities."""
        return _RANK[self]


_RANK = {Severity.MINOR: 1, Severity.MODERATE: 2, Severity.SEVERE: 3, Severity.EXTREME: 4}


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=64)
    kind: str = Field(max_length=64, description="Detector kind, e.g. flood_stage, leak")
    severity: Severity
    state: AlertState = AlertState.OPEN
    device_id: str | None = Field(default=None, max_length=64)
    site: str | None = Field(default=None, max_length=80)
    area: str | None = Field(default=None, max_length=80)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    title: str = Field(max_length=200)
    message: str = Field(default="", max_length=4000)
    value: float | None = None
    public: bool = Field(default=False, description="Goes to residents and the CAP feed")
    started_at: UtcDatetime
    updated_at: UtcDatetime
    resolved_at: UtcDatetime | None = None
