"""Problem reports: reference numbers, EXIF GPS as the location (by consent), the status
page behind its capability token, the staff API (roles, triage, on-site confirmation) and
the one-week confirmation rate."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cloud.citizen import reports
from cloud.citizen.reports import ReportForm, confirmation_stats, create_report
from cloud.db.citizen import ReportPhotoRow, ReportRow


def file_report(citizen, data: dict, photo: bytes | None = None) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Files the report over HTTP; returns (reference, status page path)."""
    files = {"photo": ("photo.jpg", photo, "image/jpeg")} if photo else None
    r = citizen.client.post("/citizen/reports", data=data, files=files, follow_redirects=False)
    assert r.status_code == 303, r.text
    path = r.headers["location"].split("?")[0]
    token = path.rsplit("/", 1)[1]
    assert path == f"/citizen/reports/status/{token}" and len(token) >= 40
    row = reports.get_report_by_token(citizen.sm, token)
    assert row is not None and row.ref and re.fullmatch(r"AK-\d{4}-\d{6}", row.ref)
    return row.ref, path


def test_exif_gps_becomes_the_location_when_none_given(citizen, images) -> None:  # type: ignore[no-untyped-def]
    photo = images.jpeg_with_gps(39.71862, 140.10251)
    form = {"category": "road:pothole", "description": "深い穴", "use_photo_location": "yes"}
    ref, path = file_report(citizen, form, photo)
    with citizen.sm() as s:
        row = s.scalars(select(ReportRow).where(ReportRow.ref == ref)).one()
        assert row.location_source == "exif"
        assert abs(row.lat - 39.71862) < 1e-5 and abs(row.lon - 140.10251) < 1e-5
        p = s.scalars(select(ReportPhotoRow)).one()
        assert (p.mime, p.width, p.height) == ("image/jpeg", 320, 240)
        # the GPS position is the report's location only, never kept with the photo
        assert (p.exif_lat, p.exif_lon) == (None, None)
    page = citizen.client.get(path).text
    assert ref in page and "受付済み" in page and "写真の位置情報から" in page
    assert "道路：穴・陥没" in page
    assert "39.718" not in page and "140.102" not in page  # never shown, even here


def test_photo_gps_is_not_used_without_consent(citizen, images) -> None:  # type: ignore[no-untyped-def]
    photo = images.jpeg_with_gps(39.71862, 140.10251)
    r = citizen.client.post(
        "/citizen/reports",
        data={"category": "road:pothole", "description": "深い穴"},
        files={"photo": ("p.jpg", photo, "image/jpeg")},
    )
    assert r.status_code == 422
    assert "写真の位置情報を使う場合は" in r.text
    with citizen.sm() as s:
        assert s.scalars(select(ReportRow)).first() is None


def test_a_given_point_or_address_wins_over_exif(citizen, images) -> None:  # type: ignore[no-untyped-def]
    photo = images.jpeg_with_gps(39.71862, 140.10251)
    ref, _ = file_report(
        citizen,
        {
            "category": "park:playground",
            "description": "ブランコの鎖が切れている",
            "lat": "39.7000",
            "lon": "140.0900",
            "use_photo_location": "yes",
        },
        photo,
    )
    ref2, _ = file_report(
        citizen,
        {
            "category": "river:bank",
            "description": "護岸が崩れている",
            "address": "旭川沿い",
            "use_photo_location": "yes",
        },
        photo,
    )
    with citizen.sm() as s:
        a = s.scalars(select(ReportRow).where(ReportRow.ref == ref)).one()
        b = s.scalars(select(ReportRow).where(ReportRow.ref == ref2)).one()
    assert (a.location_source, a.lat, a.lon) == ("point", 39.7, 140.09)
    assert (b.location_source, b.address, b.lat) == ("address", "旭川沿い", None)
    # the photo's own position is not kept anywhere when the reporter gave one
    with citizen.sm() as s:
        assert all(p.exif_lat is None for p in s.scalars(select(ReportPhotoRow)))


def test_reference_numbers_are_sequential_and_lookup_works(citizen) -> None:  # type: ignore[no-untyped-def]
    data = {"category": "road:snow", "description": "除雪されていない", "address": "泉"}
    filed = [file_report(citizen, data) for _ in range(3)]
    refs = [ref for ref, _ in filed]
    nums = [int(r.rsplit("-", 1)[1]) for r in refs]
    assert nums == sorted(nums) and len(set(nums)) == 3
    year = datetime.now(reports.JST).year
    assert all(r.startswith(f"AK-{year}-") for r in refs)
    # the lookup takes the status code (or the whole link), not the reference
    code = filed[1][1].rsplit("/", 1)[1]
    for given in (code, "https://bousai.city.test" + filed[1][1]):
        r = citizen.client.get("/citizen/reports", params={"code": given})
        assert r.status_code == 200 and refs[1] in r.text


def test_staff_api_roles_triage_and_confirm(citizen, staff, images) -> None:  # type: ignore[no-untyped-def]
    c = citizen.client
    ref, status_path = file_report(
        citizen,
        {"category": "road:gutter", "description": "側溝のふたが外れている", "address": "八橋"},
        images.jpeg_with_gps(39.72, 140.10),
    )
    assert c.get("/reports").status_code == 401
    listed = c.get("/reports", headers=staff.viewer).json()
    assert [r["ref"] for r in listed] == [ref]
    assert listed[0]["category_label"] == "道路：側溝・ふたの破損"
    photo = c.get(listed[0]["photo"]["url"], headers=staff.viewer)
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"

    # viewers cannot triage
    r = c.post(f"/reports/{ref}/triage", json={"status": "triaged"}, headers=staff.viewer)
    assert r.status_code == 403
    r = c.post(
        f"/reports/{ref}/triage",
        json={
            "status": "triaged",
            "priority": "high",
            "department": "道路維持課",
            "public_note": "担当課で確認します",
        },
        headers=staff.operator,
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["triaged_by"], body["department"]) == (
        "triaged",
        "operator-test",
        "道路維持課",
    )
    r = c.post(f"/reports/{ref}/confirm", json={}, headers=staff.operator)
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    assert r.json()["confirmed_by"] == "operator-test"
    # confirming twice is a conflict, with the reason
    r = c.post(f"/reports/{ref}/confirm", json={}, headers=staff.operator)
    assert r.status_code == 409 and "already confirmed" in r.json()["detail"]
    page = c.get(status_path).text
    assert "現地確認済み" in page and "担当課で確認します" in page

    # bad input names the field
    r = c.post(f"/reports/{ref}/triage", json={"status": "lost"}, headers=staff.operator)
    assert r.status_code == 422 and "status" in r.text
    assert c.get("/reports/AK-2026-999999", headers=staff.viewer).status_code == 404
    assert c.get("/reports/nonsense", headers=staff.viewer).status_code == 422
    r = c.post("/reports/AK-2026-999999/confirm", json={}, headers=staff.operator)
    assert r.status_code == 404


def _report(sm, created: datetime, category: str = "road") -> str:  # type: ignore[no-untyped-def]
    sub = {"road": "pothole", "river": "debris", "park": "light"}[category]
    row = create_report(
        sm, ReportForm(category, sub, "test", "泉", None, None, "address", None), now=created
    )
    assert row.ref
    return row.ref


def test_one_week_confirmation_rate(citizen, staff) -> None:  # type: ignore[no-untyped-def]
    sm = citizen.sm
    now = datetime.now(UTC)
    d = timedelta(days=1)
    # 4 matured road reports: 2 confirmed within a week, 1 after 9 days, 1 never
    fast1, fast2, slow, never = (_report(sm, now - 20 * d) for _ in range(4))
    reports.confirm_on_site(sm, fast1, actor="t", at=now - 19 * d, now=now)
    reports.confirm_on_site(sm, fast2, actor="t", at=now - 13 * d - timedelta(hours=1), now=now)
    reports.confirm_on_site(sm, slow, actor="t", at=now - 11 * d, now=now)
    # river: one rejected (left out), one young and unconfirmed (pending), one young confirmed
    rejected = _report(sm, now - 10 * d, "river")
    reports.triage(sm, rejected, actor="t", status="rejected", now=now)
    _report(sm, now - 2 * d, "river")
    young = _report(sm, now - 1 * d, "river")
    reports.confirm_on_site(sm, young, actor="t", at=now - timedelta(hours=3), now=now)

    stats = confirmation_stats(sm, now=now)
    assert stats["reports"] == 7
    assert (stats["eligible"], stats["confirmed_within_week"]) == (5, 3)
    assert (stats["pending"], stats["rejected"]) == (1, 1)
    assert stats["rate"] == 0.6
    assert stats["by_category"]["road"]["rate"] == 0.5
    assert stats["by_category"]["river"]["rate"] == 1.0
    assert stats["by_category"]["park"]["rate"] is None
    assert never  # filed, never confirmed: counts against the rate

    # the staff API serves the same figures, with a window
    r = citizen.client.get("/reports/stats", headers=staff.viewer)
    assert r.status_code == 200
    api = r.json()
    assert (api["eligible"], api["confirmed_within_week"], api["rate"]) == (5, 3, 0.6)
    since = (now - 5 * d).isoformat()
    r = citizen.client.get("/reports/stats", params={"since": since}, headers=staff.viewer)
    assert (r.json()["reports"], r.json()["eligible"], r.json()["pending"]) == (2, 1, 1)
    r = citizen.client.get(
        "/reports/stats", params={"since": "2026-01-01T00:00:00"}, headers=staff.viewer
    )
    assert r.status_code == 422 and "time zone" in r.json()["detail"]


def test_confirmation_time_is_checked(citizen) -> None:  # type: ignore[no-untyped-def]
    sm = citizen.sm
    now = datetime.now(UTC)
    ref = _report(sm, now - timedelta(days=2))
    for at in (now + timedelta(hours=2), now - timedelta(days=3)):
        try:
            reports.confirm_on_site(sm, ref, actor="t", at=at, now=now)
        except reports.ReportStateError as e:
            assert "confirmed_at" in str(e)
        else:
            raise AssertionError(f"confirmed_at={at} accepted")
