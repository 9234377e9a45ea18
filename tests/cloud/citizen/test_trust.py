"""The public pages as an attacker uses them (issue 14): real HTTP requests, a real SMTP
server counting the mails, a real uvicorn server for chunked bodies. Each attack is refused
and nothing of it is stored or sent."""

from __future__ import annotations

import io
import logging
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from cloud.api.app import create_app
from cloud.citizen import subscriptions
from cloud.citizen.routes import _MAX_BODY
from cloud.db.citizen import RateEventRow, ReportPhotoRow, ReportRow, create_tables
from cloud.db.models import SubscriptionRow
from cloud.errors import SettingsError
from cloud.settings import CloudSettings
from tests.cloud.citizen.conftest import PUBLIC_URL, make_service

FORM = {"channel": "email", "kinds": ["flood"], "area": "土崎港", "consent": "yes"}
REPORT = {"category": "road:pothole", "description": "深い穴があります", "address": "山王"}


def _subscribe(client: TestClient, address: str, **headers: str) -> int:
    r = client.post("/citizen/subscribe", data=FORM | {"address": address}, headers=headers)
    return r.status_code


def test_a_burst_of_confirmations_to_one_address_sends_only_the_limit(citizen) -> None:  # type: ignore[no-untyped-def]
    codes = [_subscribe(citizen.client, "victim@example.jp") for _ in range(40)]
    assert codes[:3] == [200, 200, 200]
    assert set(codes[3:]) == {429}
    assert len(citizen.mailbox.to("victim@example.jp")) == 3
    page = citizen.client.post("/citizen/subscribe", data=FORM | {"address": "victim@example.jp"})
    assert 'id="err-address"' in page.text and "1時間に3回まで" in page.text
    assert page.headers["retry-after"] == "3600"
    with citizen.sm() as s:
        assert s.scalar(select(func.count()).select_from(SubscriptionRow)) == 3
        # the counters never hold the address itself
        rows = list(s.execute(select(RateEventRow.scope, RateEventRow.key)))
        assert sorted(scope for scope, _ in rows) == ["address"] * 3 + ["ip"] * 3
        assert all("victim" not in key for _, key in rows)


def test_one_client_ip_is_limited_across_addresses(tmp_path: Path, smtp) -> None:  # type: ignore[no-untyped-def]
    service = make_service(tmp_path, smtp, citizen={"confirmations_per_ip_per_hour": 5})
    try:
        with TestClient(create_app(service)) as client:
            codes = [_subscribe(client, f"r{i}@example.jp") for i in range(12)]
        assert codes == [200] * 5 + [429] * 7
        assert len(smtp.mailbox.messages) == 5
    finally:
        service.stop()


def test_limits_survive_an_app_restart(tmp_path: Path, smtp) -> None:  # type: ignore[no-untyped-def]
    for expected in ([200, 200, 200], [429, 429]):
        service = make_service(tmp_path, smtp)  # same database file, a new process state
        try:
            with TestClient(create_app(service)) as client:
                codes = [_subscribe(client, "again@example.jp") for _ in expected]
            assert codes == expected
        finally:
            service.stop()
    assert len(smtp.mailbox.to("again@example.jp")) == 3


def test_a_host_header_never_decides_the_link(citizen) -> None:  # type: ignore[no-untyped-def]
    headers = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    assert _subscribe(citizen.client, "host@example.jp", **headers) == 200
    body = citizen.mailbox.text(citizen.mailbox.to("host@example.jp")[0])
    links = re.findall(r"https?://\S+", body)
    assert links and all(link.startswith(PUBLIC_URL + "/citizen/") for link in links)
    assert "evil" not in body


def test_public_url_is_required_in_production_and_the_documented_name_works() -> None:
    with pytest.raises(SettingsError, match=r"api\.public_url is required in production"):
        CloudSettings.from_mapping({"environment": "production"})
    # the earlier documented top-level name is read as api.public_url
    s = CloudSettings.from_mapping({"public_url": "https://bousai.example.jp/"})
    assert s.api.public_url == "https://bousai.example.jp"
    with pytest.raises(SettingsError, match=r"api\.public_url.*'ftp://x'"):
        CloudSettings.from_mapping({"api": {"public_url": "ftp://x"}})
    # the unsubscribe links of alert messages follow the same one URL
    s = CloudSettings.from_mapping({"api": {"public_url": "https://a.example"}, "notify": {}})
    assert s.notify is not None and s.notify.public_base_url == "https://a.example"


def test_unconfirmed_subscriptions_are_deleted_after_24_hours(citizen) -> None:  # type: ignore[no-untyped-def]
    old = subscriptions.SubscriptionForm("email", "old@example.jp", ("flood",), "山王", *[None] * 3)
    tokens: list[str] = []
    create_tables(citizen.sm.kw["bind"])
    subscriptions.create(
        citizen.sm, old, tokens.append, now=datetime.now(UTC) - timedelta(hours=25)
    )
    fresh = _subscribe(citizen.client, "new@example.jp")  # any request runs the clean-up
    assert fresh == 200
    with citizen.sm() as s:
        addresses = list(s.scalars(select(SubscriptionRow.address)))
    assert addresses == ["new@example.jp"]
    r = citizen.client.get(f"/citizen/subscriptions/{tokens[0]}/confirm")
    assert r.status_code == 404


def test_report_status_is_readable_by_token_only(citizen) -> None:  # type: ignore[no-untyped-def]
    r = citizen.client.post(
        "/citizen/reports", data=REPORT | {"email": "reporter@example.jp"}, follow_redirects=False
    )
    assert r.status_code == 303
    status_path = urlsplit(r.headers["location"]).path
    with citizen.sm() as s:
        ref = s.scalars(select(ReportRow.ref)).one()
    assert ref is not None
    # by the sequential reference: nothing, whether it exists or not
    for url in (f"/citizen/reports/{ref}", "/citizen/reports/AK-2026-999999"):
        page = citizen.client.get(url)
        assert page.status_code == 404 and "深い穴" not in page.text and ref not in page.text
    lookup = citizen.client.get("/citizen/reports", params={"ref": ref})
    assert "深い穴" not in lookup.text
    # by the token: the page, and the same link reached the reporter by e-mail
    page = citizen.client.get(status_path)
    assert page.status_code == 200 and "深い穴があります" in page.text and ref in page.text
    (mail,) = citizen.mailbox.to("reporter@example.jp")
    assert PUBLIC_URL + status_path in citizen.mailbox.text(mail)
    assert ref in citizen.mailbox.text(mail)


def _jpeg_with_everything() -> bytes:
    img = Image.new("RGB", (64, 48), (120, 80, 40))
    exif = Image.Exif()
    exif[0x013B] = "Akita Taro"  # Artist
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (39.0, 43.0, 7.0), 3: "E", 4: (140.0, 6.0, 9.0)}
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0xA430] = "Akita Taro"  # CameraOwnerName
    exif_ifd[0xA431] = "SN-0042-7777"  # BodySerialNumber
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>Akita Taro</dc:creator></x:xmpmeta>'
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, xmp=xmp, comment=b"owner Akita Taro")
    return buf.getvalue()


def test_the_photo_stored_and_served_has_no_metadata(citizen, staff) -> None:  # type: ignore[no-untyped-def]
    original = _jpeg_with_everything()
    assert all(x in original for x in (b"Exif", b"Akita Taro", b"SN-0042-7777", b"xmpmeta"))
    r = citizen.client.post(
        "/citizen/reports",
        data=REPORT | {"address": "", "use_photo_location": "yes"},
        files={"photo": ("p.jpg", original, "image/jpeg")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with citizen.sm() as s:
        report = s.scalars(select(ReportRow)).one()
        stored = s.scalars(select(ReportPhotoRow.data)).one()
    assert report.location_source == "exif" and abs(report.lat - 39.71861) < 1e-4
    served = citizen.client.get(f"/reports/{report.ref}/photo", headers=staff.viewer).content
    for data in (stored, served):
        with Image.open(io.BytesIO(data)) as img:
            assert len(img.getexif()) == 0 and "exif" not in img.info and "xmp" not in img.info
            assert "comment" not in img.info and img.size == (64, 48)
        for needle in (b"Exif", b"GPS", b"Akita Taro", b"SN-0042", b"PhoneMaker", b"xmp"):
            assert needle not in data, needle


def test_a_chunked_50_mb_upload_is_refused_as_it_streams(live, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="cloud.citizen.bodies")
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="x.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    chunk = b"\xff" * (256 * 1024)
    total = 50 * 1024 * 1024
    sent = 0
    with socket.create_connection(("127.0.0.1", live.port), timeout=30) as sock:
        sock.sendall(
            b"POST /citizen/reports HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=" + boundary.encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
            while sent < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        response = b""
        try:
            while b"\r\n\r\n" not in response:
                data = sock.recv(65536)
                if not data:
                    break
                response += data
        except ConnectionResetError:
            pass
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    refused = [r.getMessage() for r in caplog.records if "citizen_body_refused" in r.getMessage()]
    (line,) = refused
    read = int(re.search(r"read=(\d+)", line).group(1))  # type: ignore[union-attr]
    # the server stopped reading just past the limit: it never took in (or spooled) 50 MB
    assert _MAX_BODY < read <= _MAX_BODY + len(chunk) + 64 * 1024
    with live.service.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(ReportRow)) == 0


def test_chunked_bodies_are_limited_on_every_form(live) -> None:  # type: ignore[no-untyped-def]
    import httpx

    def chunks(n: int):  # type: ignore[no-untyped-def]
        yield b"channel=email&address="
        for _ in range(n):
            yield b"a" * 16384

    with httpx.Client(base_url=live.url, timeout=30) as client:
        for path in (
            "/citizen/subscribe",
            "/citizen/subscriptions/x",
            "/reports/AK-2026-000001/triage",
        ):
            r = client.post(
                path,
                content=chunks(8),  # 128 KiB > the 64 KiB form limit
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert r.status_code == 413, (path, r.status_code)
            assert "content-length" not in r.request.headers


def test_stats_with_a_time_before_year_one_in_utc_is_a_clear_422(citizen, staff) -> None:  # type: ignore[no-untyped-def]
    for name, value in (
        ("since", "0001-01-01T00:00:00+14:00"),
        ("until", "9999-12-31T23:59:59-14:00"),
    ):
        r = citizen.client.get("/reports/stats", params={name: value}, headers=staff.viewer)
        assert r.status_code == 422, r.text
        assert f"{name}=" in r.json()["detail"] and "out of range" in r.json()["detail"]
    r = citizen.client.post(
        "/reports/AK-2026-000001/confirm",
        json={"confirmed_at": "0001-01-01T00:00:00+14:00"},
        headers=staff.operator,
    )
    assert r.status_code == 422 and "confirmed_at" in r.text
