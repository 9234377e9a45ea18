"""NMEA 0183 GPS output: ``$GPRMC``/``$GNRMC`` + ``$GPGGA``/``$GNGGA`` per fix.

Buses carry GPS-only receivers (talker ``GP``), snowplows multi-GNSS ones (``GN``).
Without a fix the receiver keeps talking: RMC with status ``V`` and empty position,
GGA with quality 0. Snowplows add a proprietary ``$PAKSP,<0|1>`` sentence with the
blade state (1 = down); a reader that does not know it ignores it, as NMEA intends.
A powered-off unit (offline) sends nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from firmware_sim.models.vehicle import KNOT_KMH, VehicleModel


def checksum(body: str) -> str:
    x = 0
    for b in body.encode("ascii"):
        x ^= b
    return f"{x:02X}"


def sentence(body: str) -> str:
    return f"${body}*{checksum(body)}\r\n"


def _lat(v: float) -> tuple[str, str]:
    a = abs(v)
    d = int(a)
    return f"{d:02d}{(a - d) * 60:07.4f}", "N" if v >= 0 else "S"


def _lon(v: float) -> tuple[str, str]:
    a = abs(v)
    d = int(a)
    return f"{d:03d}{(a - d) * 60:07.4f}", "E" if v >= 0 else "W"


def fix_sentences(model: VehicleModel, t: float) -> str:
    """The sentences a receiver emits for the fix at simulated time ``t``."""
    talker = "GN" if model.vehicle_type == "snowplow" else "GP"
    dt = datetime.fromtimestamp(t, UTC)
    hms = dt.strftime("%H%M%S") + f".{dt.microsecond // 10000:02d}"
    dmy = dt.strftime("%d%m%y")
    v = model.sample(t)
    out = []
    if v.get("fix"):
        la, ns = _lat(v["lat"])
        lo, ew = _lon(v["lon"])
        kn = v["speed"] / KNOT_KMH
        out.append(
            sentence(
                f"{talker}RMC,{hms},A,{la},{ns},{lo},{ew},{kn:.1f},{v['heading']:.1f},{dmy},,,A"
            )
        )
        out.append(
            sentence(
                f"{talker}GGA,{hms},{la},{ns},{lo},{ew},1,{v['satellites']:02d},"
                f"{v['hdop']:.1f},25.0,M,35.9,M,,"
            )
        )
    else:
        out.append(sentence(f"{talker}RMC,{hms},V,,,,,,,{dmy},,,N"))
        out.append(sentence(f"{talker}GGA,{hms},,,,,0,{v['satellites']:02d},99.9,,M,,M,,"))
    if model.vehicle_type == "snowplow":
        out.append(sentence(f"PAKSP,{int(bool(v.get('plow_down')))}"))
    return "".join(out)
