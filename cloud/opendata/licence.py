"""Licence and attribution carried by every open-data output."""

from __future__ import annotations

import os
from dataclasses import dataclass
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


# licences operators publish GTFS under (SPDX ids); any other needs its URL configured
KNOWN_LICENCES: dict[str, tuple[str, str]] = {
    "CC-BY-4.0": (LICENCE_NAME, LICENCE_URL),
    "CC-BY-SA-4.0": (
        "Creative Commons Attribution-ShareAlike 4.0 International",
        "https://creativecommons.org/licenses/by-sa/4.0/",
    ),
    "CC-BY-3.0": (
        "Creative Commons Attribution 3.0 Unported",
        "https://creativecommons.org/licenses/by/3.0/",
    ),
    "CC-BY-SA-3.0": (
        "Creative Commons Attribution-ShareAlike 3.0 Unported",
        "https://creativecommons.org/licenses/by-sa/3.0/",
    ),
    "CC-BY-2.1-JP": (
        "Creative Commons Attribution 2.1 Japan",
        "https://creativecommons.org/licenses/by/2.1/jp/",
    ),
    "CC0-1.0": (
        "Creative Commons Zero 1.0 Universal",
        "https://creativecommons.org/publicdomain/zero/1.0/",
    ),
    "ODbL-1.0": (
        "Open Data Commons Open Database License 1.0",
        "https://opendatacommons.org/licenses/odbl/1-0/",
    ),
}


@dataclass(frozen=True)
class FeedLicence:
    """The licence of the operator's GTFS static feed (not necessarily the city's)."""

    licence: str = LICENCE_ID
    url: str = LICENCE_URL
    name: str = LICENCE_NAME
    attribution: str = ATTRIBUTION

    def meta(self) -> dict[str, Any]:
        return {
            "licence": self.licence,
            "licence_name": self.name,
            "licence_url": self.url,
            "attribution": self.attribution,
        }

    def link_header(self) -> str:
        return f'<{self.url}>; rel="license"'


def feed_licence(
    licence: str | None, *, url: str | None = None, attribution: str | None = None
) -> FeedLicence:
    """The static feed's licence from configuration (``AKITA_GTFS_LICENCE``, SPDX id,
    ``AKITA_GTFS_LICENCE_URL``, ``AKITA_GTFS_ATTRIBUTION``); unset: the city's own."""
    if not licence:
        return FeedLicence()
    known = KNOWN_LICENCES.get(licence)
    if known is None and not url:
        raise ValueError(
            f"setting AKITA_GTFS_LICENCE: {licence!r} is not a known licence id "
            f"({', '.join(KNOWN_LICENCES)}); set AKITA_GTFS_LICENCE_URL for another"
        )
    name, known_url = known if known else (licence, "")
    return FeedLicence(
        licence=licence,
        url=url or known_url,
        name=name,
        attribution=attribution or f"出典: GTFS feed of the bus operator, {licence}",
    )


def feed_licence_from_env() -> FeedLicence:
    return feed_licence(
        os.environ.get("AKITA_GTFS_LICENCE"),
        url=os.environ.get("AKITA_GTFS_LICENCE_URL"),
        attribution=os.environ.get("AKITA_GTFS_ATTRIBUTION"),
    )
