"""RMC and GGA sentences -> vehicle values.

RMC gives time, status (A valid / V no fix), position, speed (knots) and course;
GGA gives fix quality, satellites used and HDOP. Both carry the UTC time of the
fix, which is how the two halves of one epoch are matched.
"""

from __future__ import annotations

from typing import Any

KNOT_KMH = 1.852


class SentenceError(ValueError):
    """A sentence with a valid checksum but fields that make no sense."""


def _coord(value: str, hemi: str, degree_digits: int) -> float | None:
    if not value or not hemi:
        return None
    try:
        deg = int(value[:degree_digits])
        minutes = float(value[degree_digits:])
    except ValueError as exc:
        raise SentenceError(f"bad coordinate {value!r}") from exc
    if minutes >= 60 or hemi not in "NSEW":
        raise SentenceError(f"bad coordinate {value!r}{hemi}")
    out = deg + minutes / 60
    return -out if hemi in "SW" else out


def _float(value: str) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise SentenceError(f"bad number {value!r}") from exc


def parse_rmc(f: list[str]) -> tuple[str, dict[str, Any]]:
    """``GPRMC,time,status,lat,N,lon,E,sog,cog,date,...`` -> (time, values)."""
    if len(f) < 10:
        raise SentenceError(f"RMC has {len(f)} fields")
    fix = f[2] == "A"
    out: dict[str, Any] = {"fix": fix}
    if fix:
        lat, lon = _coord(f[3], f[4], 2), _coord(f[5], f[6], 3)
        if lat is not None and lon is not None:
            out["lat"], out["lon"] = round(lat, 7), round(lon, 7)
        sog = _float(f[7])
        if sog is not None:
            out["speed"] = round(min(sog * KNOT_KMH, 250.0), 2)
        cog = _float(f[8])
        if cog is not None:
            out["heading"] = round(cog % 360.0, 1)
    return f[1], out


def parse_gga(f: list[str]) -> tuple[str, dict[str, Any]]:
    """``GPGGA,time,lat,N,lon,E,quality,sats,hdop,alt,M,...`` -> (time, values)."""
    if len(f) < 9:
        raise SentenceError(f"GGA has {len(f)} fields")
    try:
        quality = int(f[6]) if f[6] else 0
        sats = int(f[7]) if f[7] else 0
    except ValueError as exc:
        raise SentenceError(f"bad quality/satellites {f[6]!r}/{f[7]!r}") from exc
    out: dict[str, Any] = {
        "fix_quality": min(max(quality, 0), 8),
        "satellites": min(max(sats, 0), 64),
    }
    hdop = _float(f[8])
    if hdop is not None:
        out["hdop"] = min(hdop, 99.99)
    if quality == 0:
        out["fix"] = False
    else:
        lat, lon = _coord(f[2], f[3], 2), _coord(f[4], f[5], 3)
        if lat is not None and lon is not None:
            out["lat"], out["lon"] = round(lat, 7), round(lon, 7)
    return f[1], out
