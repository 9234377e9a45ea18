"""Bad input gets a clear Japanese error tied to the field, and nothing is stored."""

from __future__ import annotations

import html as htmllib
import re

from sqlalchemy import func, select

from cloud.citizen.photos import MAX_PHOTO_BYTES
from cloud.db.citizen import ReportPhotoRow, ReportRow
from cloud.db.models import SubscriptionRow

GOOD_REPORT = {
    "category": "road:pothole",
    "description": "穴があいています",
    "address": "山王1丁目",
}


def counts(citizen) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with citizen.sm() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(t))
            for t in (ReportRow, ReportPhotoRow, SubscriptionRow)
        )


def field_error(page: str, field: str) -> str:
    m = re.search(rf'<p class="error" id="err-{field}">(.*?)</p>', page)
    assert m, f"no error for {field}"
    control = re.search(rf'<[^>]*\bid="{field}"[^>]*>', page)
    assert control and f"err-{field}" in control.group(0), "error not tied to the field"
    return htmllib.unescape(m.group(1))


def test_oversized_photo_is_refused(citizen, images) -> None:  # type: ignore[no-untyped-def]
    # a real JPEG padded to 6 MB: refused from Content-Length before the body is parsed
    big = images.encode("JPEG") + b"\0" * (6 * 1024 * 1024)
    r = citizen.client.post(
        "/citizen/reports", data=GOOD_REPORT, files={"photo": ("big.jpg", big, "image/jpeg")}
    )
    assert r.status_code == 413
    assert "大きすぎます" in field_error(r.text, "photo")
    assert counts(citizen) == (0, 0, 0)


def test_photo_just_over_the_limit_after_upload_is_refused(citizen, images) -> None:  # type: ignore[no-untyped-def]
    # no early refusal by Content-Length here (body within slack): the read limit catches it
    big = images.encode("JPEG") + b"\0" * (MAX_PHOTO_BYTES + 10 - len(images.encode("JPEG")))
    r = citizen.client.post(
        "/citizen/reports", data=GOOD_REPORT, files={"photo": ("big.jpg", big, "image/jpeg")}
    )
    assert r.status_code == 422
    assert "5 MB 以下" in field_error(r.text, "photo")
    assert counts(citizen) == (0, 0, 0)


def test_wrong_type_is_refused_by_content_not_name(citizen, images) -> None:  # type: ignore[no-untyped-def]
    for name, data in (
        ("photo.jpg", images.encode("GIF")),  # a GIF dressed as JPEG
        ("photo.png", b"%PDF-1.7\n..."),
        ("photo.jpg", b"<script>alert(1)</script>"),
    ):
        r = citizen.client.post(
            "/citizen/reports", data=GOOD_REPORT, files={"photo": (name, data, "image/jpeg")}
        )
        assert r.status_code == 422, name
        msg = field_error(r.text, "photo")
        assert "JPEG または PNG" in msg
    assert "GIF" in field_error(
        citizen.client.post(
            "/citizen/reports",
            data=GOOD_REPORT,
            files={"photo": ("x.jpg", images.encode("GIF"), "image/jpeg")},
        ).text,
        "photo",
    )
    assert counts(citizen) == (0, 0, 0)
    # the form keeps what the resident typed
    assert "穴があいています" in r.text


def test_png_named_as_anything_is_accepted(citizen, images) -> None:  # type: ignore[no-untyped-def]
    r = citizen.client.post(
        "/citizen/reports",
        data=GOOD_REPORT,
        files={"photo": ("scan.bin", images.encode("PNG"), "application/octet-stream")},
    )
    assert r.status_code == 200
    with citizen.sm() as s:
        assert s.scalars(select(ReportPhotoRow.mime)).one() == "image/png"


def test_unknown_area_is_refused(citizen) -> None:  # type: ignore[no-untyped-def]
    r = citizen.client.post(
        "/citizen/subscribe",
        data={
            "channel": "email",
            "address": "area@example.jp",
            "kinds": ["flood"],
            "area": "霞が関",
            "consent": "yes",
        },
    )
    assert r.status_code == 422
    assert "「霞が関」は登録できる地域ではありません" in field_error(r.text, "area")
    # a point outside the city is refused too
    r = citizen.client.post(
        "/citizen/subscribe",
        data={
            "channel": "email",
            "address": "area@example.jp",
            "kinds": ["flood"],
            "lat": "35.68",
            "lon": "139.76",
            "consent": "yes",
        },
    )
    assert r.status_code == 422
    assert "秋田市の範囲外" in field_error(r.text, "lat")
    assert counts(citizen) == (0, 0, 0)
    assert citizen.mailbox.messages == []


def test_missing_consent_and_bad_contact_are_refused(citizen) -> None:  # type: ignore[no-untyped-def]
    r = citizen.client.post(
        "/citizen/subscribe",
        data={"channel": "sms", "address": "03-1234", "kinds": ["heat"], "area": "山王"},
    )
    assert r.status_code == 422
    assert "同意" in field_error(r.text, "consent")
    # no SMS provider configured in this app: SMS is refused with the reason
    assert "SMS" in field_error(r.text, "channel")
    assert counts(citizen) == (0, 0, 0)


def test_script_in_description_is_stored_as_text_and_escaped(citizen) -> None:  # type: ignore[no-untyped-def]
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    r = citizen.client.post(
        "/citizen/reports", data=GOOD_REPORT | {"description": evil}, follow_redirects=False
    )
    assert r.status_code == 303
    page = citizen.client.get(r.headers["location"]).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    with citizen.sm() as s:
        assert s.scalars(select(ReportRow.description)).one() == evil


def test_script_in_a_refused_form_is_escaped_when_shown_again(citizen) -> None:  # type: ignore[no-untyped-def]
    evil = "<script>alert(1)</script>"
    r = citizen.client.post(
        "/citizen/reports", data={"category": "bad", "description": evil, "address": evil}
    )
    assert r.status_code == 422
    assert evil not in r.text and "&lt;script&gt;" in r.text
    assert "種類" in field_error(r.text, "category")
    assert counts(citizen) == (0, 0, 0)


def test_report_without_any_location_is_refused(citizen, images) -> None:  # type: ignore[no-untyped-def]
    r = citizen.client.post(
        "/citizen/reports",
        data={"category": "river:debris", "description": "ごみ"},
        files={"photo": ("p.png", images.encode("PNG"), "image/png")},  # no EXIF GPS
    )
    assert r.status_code == 422
    assert "場所" in field_error(r.text, "address")
    r = citizen.client.post(
        "/citizen/reports",
        data={"category": "river:debris", "description": "ごみ", "lat": "39.7", "lon": "abc"},
    )
    assert "経度は数字で入力してください（入力値：abc）" in field_error(r.text, "lon")
    assert counts(citizen) == (0, 0, 0)


def test_unknown_reference_and_token_get_japanese_404(citizen) -> None:  # type: ignore[no-untyped-def]
    for url in (
        "/citizen/reports/status/not-a-token",
        "/citizen/reports/status/<script>",
        "/citizen/subscriptions/not-a-token",
        "/citizen/subscriptions/not-a-token/unsubscribe",
    ):
        r = citizen.client.get(url)
        assert r.status_code == 404, url
        assert "見つかりません" in r.text
    r = citizen.client.post("/citizen/subscriptions/not-a-token/unsubscribe")
    assert r.status_code == 404
