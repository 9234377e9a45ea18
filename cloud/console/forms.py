"""Parsing form and query values; every refusal names the field and the value."""

from __future__ import annotations

from datetime import datetime

from cloud.citizen.reports import JST


class FieldError(ValueError):
    """A bad value; ``field`` is the form field's name (the id its message goes next to)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def local_time(field: str, label: str, raw: str | None) -> datetime | None:
    """A ``datetime-local`` value (``2026-06-01T09:30``), read as Japan time."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise FieldError(
            field, f"{label}「{text[:40]}」は日時として読めません。例: 2026-06-01T09:30"
        ) from None
    if not 2000 <= value.year <= 2200:
        raise FieldError(field, f"{label}「{text[:40]}」は範囲外です（2000〜2200年）。")
    return value.replace(tzinfo=JST) if value.tzinfo is None else value


def choice(field: str, label: str, raw: str | None, allowed: tuple[str, ...]) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise FieldError(field, f"{label}「{raw[:40]}」は選べる値ではありません。")
    return raw


def text(field: str, label: str, raw: str | None, max_len: int) -> str | None:
    value = (raw or "").strip()
    if len(value) > max_len:
        raise FieldError(
            field, f"{label}が長すぎます（{len(value)}文字）。{max_len}文字以内にしてください。"
        )
    return value or None


def to_local_input(value: datetime | None) -> str:
    return value.astimezone(JST).strftime("%Y-%m-%dT%H:%M") if value else ""
