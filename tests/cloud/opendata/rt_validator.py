"""Run gtfs-rt-validator (pure Python, the MobilityData rules plus the current spec's
and the best practices') on produced feeds; used by the tests, never at run time."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from google.transit import gtfs_realtime_pb2 as rt
from gtfs_rt_validator.api import Mode, PreparedFeed, Request, prepare_feed, resolve_roles, validate

# warnings accepted, each with its reason in docs/opendata.md ("Validator")
ACCEPTED_WARNINGS = frozenset({"W003"})
# with the CANCELED option on: a trip no bus showed up for has no vehicle to name
ACCEPTED_WITH_CANCELED = frozenset({"W002"})


def prepare(feed_dir: Path, tmp: Path) -> PreparedFeed:
    tmp.mkdir(parents=True, exist_ok=True)
    zpath = tmp / "static.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for p in sorted(feed_dir.glob("*.txt")):
            z.write(p, p.name)
    return prepare_feed(zpath, mode=Mode.MODERN)


def findings(
    static: PreparedFeed, feeds: Mapping[str, rt.FeedMessage], at: datetime, tmp: Path
) -> dict[str, str]:
    """Rule id -> severity of every notice on ``feeds`` (roles ``vp``, ``tu``, ``sa``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, msg in feeds.items():
        paths[role] = str(tmp / f"{role}.pb")
        Path(paths[role]).write_bytes(msg.SerializeToString())
    result = validate(Request(mode=Mode.MODERN, gtfs=static, inputs=resolve_roles(paths), at=at))
    written = result.write(tmp / "report")
    report = json.loads(written.report.read_text(encoding="utf-8"))
    system = json.loads(written.system_errors.read_text(encoding="utf-8"))
    out = {n["code"]: n["severity"] for n in report["notices"]}
    if system["notices"]:
        out["system"] = "ERROR"
    return out


def assert_valid(found: Mapping[str, str], also: frozenset[str] = frozenset()) -> None:
    errors = {k for k, v in found.items() if v == "ERROR"}
    assert not errors, f"validator errors: {sorted(errors)}"
    unexpected = set(found) - ACCEPTED_WARNINGS - also
    assert not unexpected, f"warnings not accepted in docs/opendata.md: {sorted(unexpected)}"
