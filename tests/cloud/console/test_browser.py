"""A day's work in the console, in headless Debian Chromium (Playwright with the system
browser, never a downloaded one), against the real app under uvicorn and a real InfluxDB
holding the readings.

The storm: a road flood sensor's depth rises past 30 cm; its readings go through the
real store and the real flood detector, which opens the 危険 alert. An operator signs
in, finds it on the overview map, opens it, reads the rising depth from the chart,
acknowledges it with a note, triages a resident's report and records its on-site
confirmation, silences a pump station for maintenance and signs out. Every step is
asserted from the page; screenshots go to ``test-artifacts/console/`` (the ones in
``docs/console/`` were copied from there).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from PIL import Image
from sqlalchemy import select

from cloud.api.app import create_app
from cloud.citizen import reports
from cloud.console.users import add_user
from cloud.db.citizen import ReportRow, create_tables
from cloud.db.models import AlertEventRow, MaintenanceWindowRow
from cloud.service import CloudService
from cloud.store import init_db
from schemas.devices import DeviceKind
from schemas.wire import DeviceInfo
from tests.cloud.api.data import flood_batch, register, store_batch
from tests.cloud.console.conftest import PASSWORD, make_service
from tests.servers import Influx, free_port, require_binary, wait_port

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "console"
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
DEPTHS = [3.0, 6.0, 11.0, 16.0, 21.0, 26.0, 31.0, 35.0]


@dataclass
class Day:
    url: str
    service: CloudService
    report_ref: str


def _photo() -> bytes:
    img = Image.new("RGB", (320, 240), (90, 90, 90))
    for x in range(100, 220):
        for y in range(90, 150):
            img.putpixel((x, y), (30, 30, 30))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _storm(service: CloudService) -> str:
    devices = [
        DeviceInfo(
            device_id="fl-kawabata",
            kind=DeviceKind.FLOOD_SENSOR,
            site="川反アンダーパス",
            area="大町",
            district="中央",
            lat=39.7199,
            lon=140.1200,
        ),
        DeviceInfo(
            device_id="fl-sanno",
            kind=DeviceKind.FLOOD_SENSOR,
            site="山王アンダーパス",
            area="山王",
            district="中央",
            lat=39.7168,
            lon=140.1046,
        ),
        DeviceInfo(
            device_id="mp-araya",
            kind=DeviceKind.MANHOLE_PUMP,
            site="新屋ポンプ場",
            area="新屋",
            district="西部",
            lat=39.6986,
            lon=140.0770,
        ),
        DeviceInfo(
            device_id="wb-tsuchizaki",
            kind=DeviceKind.WATER_BLOCK,
            site="土崎配水ブロック",
            area="土崎",
            district="北部",
            lat=39.7570,
            lon=140.0760,
        ),
    ]
    register(service, "gw-chuo", *devices)
    start = datetime.now(UTC) - timedelta(minutes=len(DEPTHS) + 1)
    batch = flood_batch("gw-chuo", 0, "fl-kawabata", start, DEPTHS)
    store_batch(service, batch)  # into InfluxDB
    service.handle_batch(batch, now=batch.readings[-1].ts)  # the real flood detector
    calm = flood_batch("gw-chuo", 1, "fl-sanno", start, [1.0, 1.0, 2.0])
    store_batch(service, calm)
    service.handle_batch(calm, now=calm.readings[-1].ts)
    (alert,) = [a for a in service.alerts.active() if a.kind == "flood_stage"]
    return alert.id


def _report(service: CloudService) -> str:
    create_tables(service.engine)
    form = reports.parse_report(
        {
            "category": "road:pothole",
            "description": "交差点の手前の車道に深い穴があり、自転車が転びそうです。",
            "address": "秋田市山王一丁目1番",
        },
        _photo(),
    )
    row, _ = reports.file_report(service.sessionmaker, form)
    return str(row.ref)


@pytest.fixture
def day(tmp_path: Path, influx: Influx, influx_db: str) -> Iterator[Day]:
    store_url = f"influx+http://127.0.0.1:{influx.port}/{influx_db}"
    init_db(store_url)
    service = make_service(tmp_path, store={"url": store_url}, console={"live_refresh_s": 1})
    add_user(
        service.sessionmaker,
        name="sato",
        role="operator",
        password=PASSWORD,
        display_name="佐藤 花子",
        actor="test",
    )
    _storm(service)
    ref = _report(service)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-console", daemon=True)
    thread.start()
    try:
        wait_port(port)
        yield Day(f"http://127.0.0.1:{port}", service, ref)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        service.stop()


@pytest.mark.browser
def test_an_operators_day_in_chromium(day: Day) -> None:
    chromium = require_binary("chromium", "chromium")
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            # a tablet in landscape; JavaScript on (the map), the tiles unreachable
            ctx = browser.new_context(locale="ja-JP", viewport={"width": 1180, "height": 820})
            ctx.route("https://cyberjapandata.gsi.go.jp/**", lambda route: route.abort())
            page = ctx.new_page()
            csp_errors: list[str] = []
            page.on(
                "console",
                lambda m: csp_errors.append(m.text) if "Content Security" in m.text else None,
            )

            def shot(name: str) -> None:
                path = ARTIFACTS / f"{len(shots) + 1:02d}-{name}.png"
                page.screenshot(path=str(path), full_page=True)
                shots.append(path.name)

            # sign in as the operator
            page.goto(f"{day.url}/console/")
            page.get_by_role("heading", name="サインイン").wait_for()
            page.get_by_label("利用者名").fill("sato")
            page.get_by_label("パスワード").fill(PASSWORD)
            shot("signin")
            page.get_by_role("button", name="サインイン").click()
            page.get_by_role("heading", name="概況").wait_for()
            expect(page.locator(".signout .who")).to_contain_text("佐藤 花子（sato・操作）")

            # the storm's 危険 alert on the overview map, as a labelled marker
            expect(page.locator("#map[data-ready]")).to_have_attribute("data-ready", "4")
            label = page.locator("#map .leaflet-tooltip", has_text="冠水危険 fl-kawabata")
            expect(label).to_be_visible()
            expect(label).to_contain_text("川反アンダーパス")
            # the calm sensor has a marker but no flood label
            calm = page.locator("#map .leaflet-tooltip", has_text="fl-sanno")
            expect(calm).not_to_contain_text("冠水")
            extreme = page.get_by_role("row", name="極大")
            expect(extreme.get_by_role("cell").nth(0)).to_have_text("1")
            shot("overview")

            # live refresh: a second underpass floods while the page is open; its count
            # updates without a reload (the page refreshes itself every second here)
            url = page.url
            rising = flood_batch("gw-chuo", 2, "fl-sanno", datetime.now(UTC), [12.0, 33.0])
            store_batch(day.service, rising)
            day.service.handle_batch(rising, now=rising.readings[-1].ts)
            expect(extreme.get_by_role("cell").nth(0)).to_have_text("2")
            expect(page.locator("#live-status")).to_contain_text("最終更新")
            assert page.url == url
            for alert in day.service.alerts.active():
                if alert.device_id == "fl-sanno":  # its stage and rate-of-rise alerts
                    day.service.alerts.resolve(alert.id, "test", "水位計の試験")
            expect(extreme.get_by_role("cell").nth(0)).to_have_text("1")

            # open it; the chart shows the rising depth
            page.get_by_role("link", name="警報", exact=True).click()
            kawabata = page.get_by_role("row").filter(has_text="fl-kawabata")
            kawabata.get_by_role("link", name="道路冠水 危険").click()
            page.get_by_role("heading", name="警報前後の計測値（depth、cm）").wait_for()
            expect(page.locator("svg.chart polyline")).to_have_count(1)
            expect(page.locator("#chart-trend")).to_have_text("上昇")
            summary = page.locator("#chart-summary").inner_text()
            assert f"{len(DEPTHS)} 点" in summary, summary
            assert "最初 3.0" in summary and "最後 35.0" in summary, summary
            points = page.locator("svg.chart polyline").get_attribute("points") or ""
            ys = [float(p.split(",")[1]) for p in points.split()]
            assert ys == sorted(ys, reverse=True) and len(ys) == len(DEPTHS)  # up = smaller y
            expect(page.locator("#alert-state")).to_have_text("未対応")
            shot("alert")

            # acknowledge with a note
            page.get_by_label("メモ（確認）").fill("道路課の班が現地へ出動。通行止めを手配。")
            page.get_by_role("button", name="確認済みにする").click()
            expect(page.get_by_role("status")).to_have_text("確認済みにしました（sato）。")
            expect(page.locator("#alert-state")).to_have_text("対応中（確認済み）")
            trail = page.get_by_role("table", name="記録（監査証跡）")
            expect(trail.get_by_role("row").last).to_contain_text("sato")
            expect(trail.get_by_role("row").last).to_contain_text("通行止めを手配")
            shot("alert-acknowledged")

            # triage a resident's report, then record the on-site confirmation
            page.get_by_role("link", name="市民通報").click()
            page.get_by_role("link", name=day.report_ref).click()
            expect(page.locator("img.photo")).to_be_visible()
            page.get_by_label("状態").select_option("triaged")
            page.get_by_label("優先度").select_option("high")
            page.get_by_label("担当課").fill("道路維持課")
            page.get_by_label("市民向けのお知らせ（状況ページに表示）").fill(
                "担当課で確認しています。"
            )
            shot("report")
            page.get_by_role("button", name="振り分けを記録する").click()
            expect(page.get_by_role("status")).to_have_text("振り分けを記録しました（sato）。")
            expect(page.locator("#report-status")).to_have_text("担当課で確認中")
            page.get_by_role("button", name="現地確認を記録する").click()
            expect(page.get_by_role("status")).to_have_text("現地確認を記録しました（sato）。")
            expect(page.locator("#report-status")).to_have_text("現地確認済み")
            expect(page.locator("#report-confirmed")).to_contain_text("（sato）")
            shot("report-confirmed")

            # open a maintenance window for the pump station
            page.get_by_role("link", name="保守期間").click()
            start = datetime.now(UTC) + timedelta(hours=1)
            page.get_by_label("設置場所（例: ポンプ場の名称）").fill("新屋ポンプ場")
            page.get_by_label("開始日時").fill(_local(start))
            page.get_by_label("終了日時").fill(_local(start + timedelta(hours=8)))
            page.get_by_label("理由").fill("1号ポンプのオーバーホール")
            page.get_by_role("button", name="保守期間を登録する").click()
            expect(page.get_by_role("status")).to_have_text("保守期間を登録しました（sato）。")
            row = page.get_by_role("row", name="新屋ポンプ場")
            expect(row).to_contain_text("1号ポンプのオーバーホール")
            expect(row).to_contain_text("登録 sato")
            shot("maintenance")

            # sign out: the pages are gone with the session
            page.get_by_role("button", name="サインアウト").click()
            expect(page.get_by_role("status")).to_have_text("サインアウトしました。")
            page.goto(f"{day.url}/console/alerts")
            page.get_by_role("heading", name="サインイン").wait_for()
            assert csp_errors == [], csp_errors
        finally:
            browser.close()

    # what the pages said is what the stores hold, under the person's name
    with day.service.sessionmaker() as s:
        ack = s.scalars(select(AlertEventRow).where(AlertEventRow.action == "ack")).one()
        assert ack.actor == "sato" and "通行止め" in (ack.note or "")
        report = s.scalars(select(ReportRow).where(ReportRow.ref == day.report_ref)).one()
        assert (report.department, report.priority, report.status) == (
            "道路維持課",
            "high",
            "confirmed",
        )
        assert report.triaged_by == "sato" and report.confirmed_by == "sato"
        window = s.scalars(select(MaintenanceWindowRow)).one()
        assert (window.site, window.created_by) == ("新屋ポンプ場", "sato")
        assert abs((window.ends_at - window.starts_at) - timedelta(hours=8)) < timedelta(minutes=1)
    assert len(shots) == 7


def _local(t: datetime) -> str:
    return t.astimezone(reports.JST).strftime("%Y-%m-%dT%H:%M")
