"""Licence and attribution carried by every open-data output."""

from __future__ import annotations

from typing import Any

LICENCE_ID = "CC-BY-4.0"
LICENCE_NAME = "Creative Commons Attribution 4.0 International"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
PUBLISHER = "秋田市 (Akita City)"
ATTRIBUTION = (
    "出典: 秋田市 IoT テレメトリ オープンデータ (Akita City IoT telemetry open data), CC BY 4.0"
)


def licence_meta() -> dict[str, Any]:
    """The block embedded in GeoJSON/JSON outputs and served by the index."""
    return {
        "licence": LICENCE_ID,
        "licence_name": LICENCE_NAME,
        "licence_url": LICENCE_URL,
        "publisher": PUBLISHER,
        "attribution": ATTRIBUTION,
    }


def link_header() -> str:
    """``Link`` header value naming the licence (RFC 8288 ``license`` relation)."""
    return f'<{LICENCE_URL}>; rel="license"'
