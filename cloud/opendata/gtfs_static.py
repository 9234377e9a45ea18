"""The city's GTFS static feed: what a realtime position is matched against.

Reads ``agency.txt``, ``routes.txt``, ``trips.txt``, ``stop_times.txt``, ``stops.txt``,
``calendar.txt`` and, when present, ``calendar_dates.txt``, ``frequencies.txt``,
``shapes.txt`` and ``feed_info.txt``, from a zip file or a directory, in UTF-8 (with or
without BOM) or CP932 (some Japanese operators still publish Shift_JIS); the encoding
found is kept in :attr:`GtfsStatic.encoding`. Blank arrival and departure times at
non-timepoint stops are valid GTFS: they are interpolated by distance between the
timed stops around them, as the spec says consumers may. Only what trip matching and
TripUpdates need is kept.

Trip matching itself is in :mod:`cloud.opendata.matching`.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cloud.errors import CloudError

SAMPLE_FEED = Path(__file__).parent / "sample_gtfs"


class GtfsError(CloudError):
    """The static feed is missing a file or has a bad value (names file, row and field)."""


def parse_gtfs_time(text: str, *, where: str) -> int:
    """``HH:MM:SS`` (hours may exceed 24) -> seconds after the service day's noon-12h."""
    try:
        h, m, s = (int(x) for x in text.strip().split(":"))
    except ValueError as exc:
        raise GtfsError(f"{where}: time {text!r} is not HH:MM:SS") from exc
    return h * 3600 + m * 60 + s


def format_gtfs_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class Route:
    route_id: str
    short_name: str
    long_name: str


@dataclass(frozen=True)
class StopTime:
    arrival: int
    departure: int
    lat: float
    lon: float
    stop_id: str = ""
    stop_sequence: int = 0
    interpolated: bool = False  # blank in the feed, timed by distance here


@dataclass(frozen=True)
class Trip:
    trip_id: str
    route_id: str
    service_id: str
    direction_id: int | None
    stop_times: tuple[StopTime, ...]
    shape_id: str | None = None
    block_id: str | None = None

    @property
    def span(self) -> int:
        return self.stop_times[-1].arrival - self.stop_times[0].departure

    def position_at(self, offset: int) -> tuple[float, float]:
        """Scheduled (lat, lon) ``offset`` seconds after the trip's first departure."""
        t = self.stop_times[0].departure + offset
        sts = self.stop_times
        for a, b in itertools.pairwise(sts):
            if t <= a.departure:
                return a.lat, a.lon
            if t < b.arrival:
                f = (t - a.departure) / max(1, b.arrival - a.departure)
                return a.lat + f * (b.lat - a.lat), a.lon + f * (b.lon - a.lon)
        return sts[-1].lat, sts[-1].lon


@dataclass(frozen=True)
class Frequency:
    start: int
    end: int
    headway_s: int
    exact_times: bool = False


@dataclass(frozen=True)
class Service:
    weekdays: tuple[bool, ...]  # Monday first
    start: date
    end: date
    added: frozenset[date] = frozenset()
    removed: frozenset[date] = frozenset()

    def runs_on(self, day: date) -> bool:
        if day in self.removed:
            return False
        if day in self.added:
            return True
        return self.start <= day <= self.end and self.weekdays[day.weekday()]


@dataclass
class GtfsStatic:
    timezone: ZoneInfo
    routes: dict[str, Route]
    trips_by_route: dict[str, list[Trip]]
    services: dict[str, Service]
    frequencies: dict[str, list[Frequency]] = field(default_factory=dict)
    shapes: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    encoding: str = "utf-8"
    feed_version: str | None = None
    interpolated_stop_times: int = 0

    @classmethod
    def load(cls, path: Path | str) -> GtfsStatic:
        return _load(Path(path))

    def trip_path(self, trip: Trip) -> list[tuple[float, float]]:
        """The trip's line: its ``shapes.txt`` shape, else its stop-to-stop path."""
        if trip.shape_id and trip.shape_id in self.shapes:
            return self.shapes[trip.shape_id]
        return [(st.lat, st.lon) for st in trip.stop_times]

    def route_shapes(self) -> dict[str, list[tuple[float, float]]]:
        """Each route as the line of its trip with the most stops (its ``shapes.txt``
        shape when it has one): the line the off-route and layover checks measure to,
        the same one trip matching measures to."""
        out: dict[str, list[tuple[float, float]]] = {}
        for route_id, trips in self.trips_by_route.items():
            longest = max(trips, key=lambda t: len(t.stop_times), default=None)
            if longest is not None and len(longest.stop_times) >= 2:
                out[route_id] = self.trip_path(longest)
        return out

    def trip_count(self) -> int:
        return sum(len(t) for t in self.trips_by_route.values())


def _rows(files: dict[str, str], name: str, *, required: bool = True) -> list[dict[str, str]]:
    text = files.get(name)
    if text is None:
        if required:
            raise GtfsError(f"GTFS feed has no {name}")
        return []
    return [
        {k.strip(): (v or "").strip() for k, v in r.items()}
        for r in csv.DictReader(io.StringIO(text))
    ]


def decode_feed_file(raw: bytes, name: str) -> tuple[str, str]:
    """Text and encoding (``utf-8``, ``utf-8-bom`` or ``cp932``) of one feed file."""
    # strict UTF-8 first: CP932 text is almost never valid UTF-8, while UTF-8 Japanese
    # often decodes as (wrong) CP932
    bom = raw.startswith(b"\xef\xbb\xbf")
    encs = ("utf-8-sig",) if bom else ("utf-8", "cp932")
    last: UnicodeDecodeError | None = None
    for enc in encs:
        try:
            return raw.decode(enc), "utf-8-bom" if enc == "utf-8-sig" else enc
        except UnicodeDecodeError as exc:
            last = exc
    where = f"byte {last.start}: {last.reason}" if last else "undecodable"
    raise GtfsError(f"{name}: encoding is neither UTF-8 nor CP932 ({where})")


def _read_files(path: Path) -> tuple[dict[str, str], str]:
    if path.is_dir():
        raw = {p.name: p.read_bytes() for p in path.glob("*.txt")}
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            raw = {Path(n).name: z.read(n) for n in z.namelist() if n.endswith(".txt")}
    elif not path.exists():
        raise GtfsError(f"GTFS feed {str(path)!r} does not exist")
    else:
        raise GtfsError(f"GTFS feed {str(path)!r} is neither a directory nor a zip file")
    files, encodings = {}, set()
    for name, data in raw.items():
        files[name], enc = decode_feed_file(data, name)
        if not data.isascii():  # ASCII reads the same in every encoding
            encodings.add(enc)
    return files, "+".join(sorted(encodings)) or "utf-8"


def _field(row: dict[str, str], name: str, where: str) -> str:
    value = row.get(name, "")
    if value == "":
        raise GtfsError(f"{where}: field {name!r} is missing or empty")
    return value


def _date(text: str, where: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError as exc:
        raise GtfsError(f"{where}: date {text!r} is not YYYYMMDD") from exc


def _load(path: Path) -> GtfsStatic:
    files, encoding = _read_files(path)
    agencies = _rows(files, "agency.txt")
    if not agencies:
        raise GtfsError("agency.txt has no rows")
    tz_name = _field(agencies[0], "agency_timezone", "agency.txt row 1")
    try:
        tz = ZoneInfo(tz_name)
    except (KeyError, ValueError) as exc:
        raise GtfsError(f"agency.txt: agency_timezone {tz_name!r} is unknown") from exc

    routes = {}
    for i, r in enumerate(_rows(files, "routes.txt"), start=2):
        rid = _field(r, "route_id", f"routes.txt line {i}")
        routes[rid] = Route(rid, r.get("route_short_name", ""), r.get("route_long_name", ""))

    stops = {}
    for i, r in enumerate(_rows(files, "stops.txt"), start=2):
        where = f"stops.txt line {i}"
        sid = _field(r, "stop_id", where)
        stops[sid] = (
            _float(_field(r, "stop_lat", where), "stop_lat", where),
            _float(_field(r, "stop_lon", where), "stop_lon", where),
        )

    services: dict[str, Service] = {}
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    for i, r in enumerate(_rows(files, "calendar.txt", required=False), start=2):
        where = f"calendar.txt line {i}"
        services[_field(r, "service_id", where)] = Service(
            tuple(r.get(d) == "1" for d in days),
            _date(_field(r, "start_date", where), where),
            _date(_field(r, "end_date", where), where),
        )
    added: dict[str, set[date]] = {}
    removed: dict[str, set[date]] = {}
    for i, r in enumerate(_rows(files, "calendar_dates.txt", required=False), start=2):
        where = f"calendar_dates.txt line {i}"
        sid = _field(r, "service_id", where)
        d = _date(_field(r, "date", where), where)
        (added if r.get("exception_type") == "1" else removed).setdefault(sid, set()).add(d)
    for sid in set(added) | set(removed):
        base = services.get(sid) or Service((False,) * 7, date.max, date.min)
        services[sid] = Service(
            base.weekdays,
            base.start,
            base.end,
            frozenset(added.get(sid, ())),
            frozenset(removed.get(sid, ())),
        )
    if not services:
        raise GtfsError("GTFS feed has neither calendar.txt nor calendar_dates.txt")

    by_trip: dict[str, list[_RawStopTime]] = {}
    for i, r in enumerate(_rows(files, "stop_times.txt"), start=2):
        where = f"stop_times.txt line {i}"
        sid = _field(r, "stop_id", where)
        if sid not in stops:
            raise GtfsError(f"{where}: stop_id {sid!r} is not in stops.txt")
        arr_text, dep_text = r.get("arrival_time", ""), r.get("departure_time", "")
        arr = parse_gtfs_time(arr_text or dep_text, where=where) if arr_text or dep_text else None
        dep = parse_gtfs_time(dep_text or arr_text, where=where) if arr_text or dep_text else None
        seq_text = _field(r, "stop_sequence", where)
        try:
            seq = int(seq_text)
        except ValueError as exc:
            raise GtfsError(f"{where}: stop_sequence {seq_text!r} is not an integer") from exc
        by_trip.setdefault(_field(r, "trip_id", where), []).append(
            _RawStopTime(seq, sid, arr, dep, *stops[sid], where)
        )

    shapes = _shapes(files)
    interpolated = 0
    trips_by_route: dict[str, list[Trip]] = {}
    for i, r in enumerate(_rows(files, "trips.txt"), start=2):
        where = f"trips.txt line {i}"
        tid = _field(r, "trip_id", where)
        rid = _field(r, "route_id", where)
        svc = _field(r, "service_id", where)
        if rid not in routes:
            raise GtfsError(f"{where}: route_id {rid!r} is not in routes.txt")
        if svc not in services:
            raise GtfsError(f"{where}: service_id {svc!r} is not in calendar")
        raw = sorted(by_trip.get(tid, []), key=lambda x: x.seq)
        if len(raw) < 2:
            raise GtfsError(f"{where}: trip {tid!r} has fewer than two stop_times")
        sts = _interpolate(raw, tid)
        interpolated += sum(st.interpolated for st in sts)
        direction = r.get("direction_id")
        if direction not in (None, "", "0", "1"):
            raise GtfsError(f"{where}: direction_id {direction!r} is not 0 or 1")
        shape_id = r.get("shape_id") or None
        if shape_id is not None and shape_id not in shapes:
            raise GtfsError(f"{where}: shape_id {shape_id!r} is not in shapes.txt")
        trips_by_route.setdefault(rid, []).append(
            Trip(
                tid,
                rid,
                svc,
                int(direction) if direction else None,
                sts,
                shape_id,
                r.get("block_id") or None,
            )
        )

    frequencies: dict[str, list[Frequency]] = {}
    for i, r in enumerate(_rows(files, "frequencies.txt", required=False), start=2):
        where = f"frequencies.txt line {i}"
        frequencies.setdefault(_field(r, "trip_id", where), []).append(
            Frequency(
                parse_gtfs_time(_field(r, "start_time", where), where=where),
                parse_gtfs_time(_field(r, "end_time", where), where=where),
                _int(_field(r, "headway_secs", where), "headway_secs", where),
                r.get("exact_times") == "1",
            )
        )
    info = _rows(files, "feed_info.txt", required=False)
    return GtfsStatic(
        tz,
        routes,
        trips_by_route,
        services,
        frequencies,
        shapes,
        encoding,
        (info[0].get("feed_version") or None) if info else None,
        interpolated,
    )


def _int(text: str, name: str, where: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise GtfsError(f"{where}: {name} {text!r} is not an integer") from exc


def _float(text: str, name: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise GtfsError(f"{where}: {name} {text!r} is not a number") from exc
    if not math.isfinite(value):
        raise GtfsError(f"{where}: {name} {text!r} is not a finite number")
    return value


@dataclass(frozen=True)
class _RawStopTime:
    seq: int
    stop_id: str
    arrival: int | None
    departure: int | None
    lat: float
    lon: float
    where: str


def _interpolate(raw: list[_RawStopTime], trip_id: str) -> tuple[StopTime, ...]:
    """Stop times with blank (non-timepoint) times filled in by distance along the trip
    between the timed stops around them; the first and last stop must be timed."""
    for end in (raw[0], raw[-1]):
        if end.arrival is None:
            raise GtfsError(
                f"{end.where}: trip {trip_id!r} first and last stop need arrival_time and "
                "departure_time (only stops between may be blank)"
            )
    dist = [0.0]
    for a, b in itertools.pairwise(raw):
        dist.append(dist[-1] + haversine_m(a.lat, a.lon, b.lat, b.lon))
    out: list[StopTime] = []
    prev = 0  # index of the last timed stop
    for i, st in enumerate(raw):
        if st.arrival is not None and st.departure is not None:
            if out and st.arrival < out[-1].departure:
                raise GtfsError(f"{st.where}: arrival_time goes back in time on trip {trip_id!r}")
            out.append(StopTime(st.arrival, st.departure, st.lat, st.lon, st.stop_id, st.seq))
            prev = i
            continue
        nxt = next(j for j in range(i + 1, len(raw)) if raw[j].arrival is not None)
        t0, t1 = raw[prev].departure, raw[nxt].arrival
        assert t0 is not None and t1 is not None  # timed stops, by construction
        span = dist[nxt] - dist[prev]
        f = (dist[i] - dist[prev]) / span if span > 0 else (i - prev) / (nxt - prev)
        t = round(t0 + f * (t1 - t0))
        out.append(StopTime(t, t, st.lat, st.lon, st.stop_id, st.seq, True))
    return tuple(out)


def _shapes(files: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
    points: dict[str, list[tuple[int, float, float]]] = {}
    for i, r in enumerate(_rows(files, "shapes.txt", required=False), start=2):
        where = f"shapes.txt line {i}"
        points.setdefault(_field(r, "shape_id", where), []).append(
            (
                _int(_field(r, "shape_pt_sequence", where), "shape_pt_sequence", where),
                _float(_field(r, "shape_pt_lat", where), "shape_pt_lat", where),
                _float(_field(r, "shape_pt_lon", where), "shape_pt_lon", where),
            )
        )
    out = {}
    for sid, pts in points.items():
        if len(pts) < 2:
            raise GtfsError(f"shapes.txt: shape {sid!r} has fewer than two points")
        out[sid] = [(la, lo) for _, la, lo in sorted(pts)]
    return out
