"""Per-series on/off conditions that emit a Detection only when they change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cloud.detect.base import Detection
from schemas.alert import Severity


class Flags:
    """Remembers which (device, kind) conditions are active and their last severity/stage.

    Detectors call :meth:`set` on every evaluation; only a change (on, off, or a new
    severity/stage while on) becomes a Detection, so the alert lifecycle is not flooded.
    """

    __slots__ = ("_state", "detector", "public_kinds")

    def __init__(self, detector: str, *, public_kinds: frozenset[str] = frozenset()) -> None:
        self.detector = detector
        self.public_kinds = public_kinds
        self._state: dict[tuple[str, str], tuple[Severity, Any]] = {}

    def active(self, device_id: str, kind: str) -> bool:
        return (device_id, kind) in self._state

    def set(
        self,
        out: list[Detection],
        device_id: str,
        kind: str,
        ts: datetime,
        on: bool,
        *,
        severity: Severity = Severity.MINOR,
        title: str = "",
        message: str = "",
        value: float | None = None,
        extra: dict[str, Any] | None = None,
        force: bool = False,
    ) -> None:
        """Record the condition; append a Detection when it changed (or ``force``)."""
        key = (device_id, kind)
        prev = self._state.get(key)
        stage = extra.get("stage") if extra else None
        if on:
            if prev is not None and prev == (severity, stage) and not force:
                return
            self._state[key] = (severity, stage)
        else:
            if prev is None:
                return
            del self._state[key]
            severity = prev[0]
        out.append(
            Detection(
                detector=self.detector,
                kind=kind,
                device_id=device_id,
                ts=ts,
                active=on,
                severity=severity,
                title=title,
                message=message,
                value=value,
                public=kind in self.public_kinds,
                extra=dict(extra or {}),
            )
        )
