"""End to end in headless Debian Chromium (Playwright, never a downloaded browser): the real
app under uvicorn, a real SMTP server as the mail server. A resident subscribes, follows
the confirmation link from the mailbox, files a problem report with a photo carrying EXIF
GPS, and reads its status, all with JavaScript switched off. A screenshot of every page
goes to ``test-artifacts/citizen/``."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from sqlalchemy import select

from cloud.api.app import create_app
from cloud.db.citizen import ReportRow
from cloud.db.models import DeviceRow, SubscriptionRow
from cloud.store.base import Point
from tests.servers import free_port, require_binary, wait_port

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "citizen"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(tmp_path: Path, smtp, service_factory) -> Iterator[tuple[str, object]]:  # type: ignore[no-untyped-def]
    port = free_port()
    service = service_factory(tmp_path, smtp, api={"public_url": f"http://127.0.0.1:{port}"})
    with service.sessionmaker() as s, s.begin():
        s.add(
            DeviceRow(
                device_id="fl-browser",
                kind="flood_sensor",
                site="川反通り",
                area="大町",
                lat=39.7199,
                lon=140.1200,
            )
        )
    service.store.write(
        [Point("flood_sensor", {"device": "fl-browser"}, {"depth": 21.0}, datetime.now(UTC))]
    )
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="uvicorn-citizen", daemon=True)
    thread.start()
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}", service
    finally:
        srv.should_exit = True
        thread.join(timeout=15)
        service.stop()


@pytest.mark.browser
def test_resident_journey_in_chromium(server, smtp, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chromium = require_binary("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    base, service = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "pothole.jpg"
    photo.write_bytes(images.jpeg_with_gps(39.71862, 140.10251))
    shots: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            # the resident's browser has JavaScript off: every step must work without it
            ctx = browser.new_context(java_script_enabled=False, locale="ja-JP")
            page = ctx.new_page()

            def shot(name: str) -> None:
                path = ARTIFACTS / f"{len(shots) + 1:02d}-{name}.png"
                page.screenshot(path=str(path), full_page=True)
                shots.append(path.name)

            page.goto(f"{base}/citizen/")
            shot("home")
            page.get_by_role("link", name="防災情報のメール・SMS登録").first.click()
            page.get_by_label("連絡先（電子メールアドレスまたは携帯電話番号）").fill(
                "akiko@example.jp"
            )
            page.get_by_label("熱中症（高温）").uncheck()
            page.get_by_label("町名から選ぶ").select_option("大町")
            page.get_by_label("利用規約と個人情報の取り扱いに同意します").check()
            shot("subscribe-form")
            page.get_by_role("button", name="登録する（確認用のリンクを送信）").click()
            page.get_by_role("heading", name="確認用のリンクを送信しました").wait_for()
            shot("subscribe-sent")

            # the confirmation link, from the real SMTP server's mailbox
            link = smtp.mailbox.confirmation_link("akiko@example.jp")
            assert link.startswith(base + "/citizen/subscriptions/")
            page.goto(link)
            shot("confirm")
            page.get_by_role("button", name="登録を確定する").click()
            page.get_by_role("heading", name="登録が完了しました").wait_for()
            shot("confirmed")
            page.get_by_role("link", name="登録内容の確認・変更・配信停止").click()
            assert page.get_by_text("配信中").is_visible()
            shot("subscription")
            with service.sessionmaker() as s:
                sub = s.scalars(select(SubscriptionRow)).one()
                assert sub.confirmed_at is not None and sub.kinds == ["flood"]
                assert sub.area == "大町"
            assert urlsplit(page.url).path == urlsplit(link).path.removesuffix("/confirm")

            # a problem report with a photo; its EXIF GPS is the location
            page.goto(f"{base}/citizen/reports/new")
            page.get_by_label("種類").select_option("road:pothole")
            page.get_by_label("内容").fill("車道に深い穴があり、自転車が転びそうです。")
            page.get_by_label("写真（任意、JPEG または PNG、5 MB まで）").set_input_files(photo)
            page.get_by_label("写真の位置情報を通報場所として使うことに同意する").check()
            shot("report-form")
            page.get_by_role("button", name="通報する").click()
            page.get_by_role("heading", name="通報の対応状況").wait_for()
            shot("report-created")
            ref = page.locator(".ref").inner_text().strip()
            assert re.fullmatch(r"AK-\d{4}-\d{6}", ref)
            assert page.get_by_text("写真の位置情報から").is_visible()
            with service.sessionmaker() as s:
                row = s.scalars(select(ReportRow)).one()
                assert row.ref == ref and row.location_source == "exif"
                assert abs(row.lat - 39.71862) < 1e-5

            # later: read the status with the link shown on the confirmation page
            status_link = page.get_by_label("このページのリンク").input_value()
            assert status_link.startswith(f"{base}/citizen/reports/status/")
            page.goto(f"{base}/citizen/reports")
            page.get_by_label("確認コード（または確認用リンク）").fill(status_link)
            page.get_by_role("button", name="状況を確認する").click()
            page.get_by_role("heading", name="通報の対応状況").wait_for()
            assert page.get_by_text("受付済み").is_visible()
            assert page.url == status_link
            shot("report-status")

            page.goto(f"{base}/citizen/procedures")
            page.get_by_label("ライフイベント").select_option(label="出生")
            page.get_by_role("button", name="手続きを表示する").click()
            page.get_by_role("heading", name="出生届").wait_for()
            shot("procedures")
            page.goto(f"{base}/citizen/flood")
            assert page.get_by_text("川反通り").is_visible()
            assert page.get_by_text("警戒", exact=True).is_visible()
            shot("flood")
            ctx.close()

            # keyboard: the first Tab lands on the skip link, and focus is visible
            ctx = browser.new_context(locale="ja-JP")
            page = ctx.new_page()
            page.goto(f"{base}/citizen/subscribe")
            page.keyboard.press("Tab")
            focused = page.evaluate(
                "() => { const e = document.activeElement; const s = getComputedStyle(e);"
                " return [e.textContent, s.outlineStyle, s.outlineWidth]; }"
            )
            assert focused[0] == "本文へ移動"
            assert focused[1] == "solid" and focused[2] == "3px"
            shot("keyboard-focus")
            ctx.close()
        finally:
            browser.close()
    assert len(shots) == 12
    assert all((ARTIFACTS / s).stat().st_size > 1000 for s in shots)
