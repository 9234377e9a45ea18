"""JIS X 8341-3 / WCAG 2.1 AA basics on every console page, with the citizen pages' own
checks (tests/cloud/citizen/test_accessibility.py): lang, labels, error ties, skip link,
unique ids, no positive tabindex, buttons with text, and AA contrast of the stylesheet.
Added here: every table has a caption, every coloured state badge carries its text, and
every action is a plain form (nothing needs JavaScript)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cloud.citizen.test_accessibility import audit, contrast
from tests.cloud.console.conftest import Console, csrf_of
from tests.cloud.console.data import add_device, file_report, open_alert

CSS = Path(__file__).resolve().parents[3] / "cloud" / "console" / "static" / "console.css"
_BADGE = re.compile(r'<span class="(?:sev|state|stage|mstate) [^"]+">([^<]*)</span>')


@pytest.fixture
def pages(console: Console) -> list[tuple[str, str]]:
    svc = console.service
    add_device(svc, "fl-a11y", "flood_sensor", site="川反アンダーパス", lat=39.72, lon=140.12)
    add_device(
        svc,
        "mp-a11y",
        "manhole_pump",
        site="新屋ポンプ場",
        lat=39.70,
        lon=140.08,
        state="offline",
        state_reason="no data for 900 s",
    )
    alert_id = open_alert(svc, "fl-a11y")
    ref = file_report(svc, "歩道の段差が危ないです。", days_ago=6)
    file_report(svc, "街灯が消えています。", days_ago=9)
    admin = console.client("admin")
    out: list[tuple[str, str]] = []

    def get(name: str, url: str, status: int = 200) -> str:
        r = admin.get(url)
        assert r.status_code == status, (url, r.status_code)
        out.append((name, r.text))
        return r.text

    def post(name: str, url: str, data: dict[str, str], status: int) -> None:
        # every signed-in page carries the session's token (the sign-out form)
        r = admin.post(url, data={"csrf": csrf_of(admin.get("/console/").text), **data})
        assert r.status_code == status, (url, r.status_code, r.text[:300])
        out.append((name, r.text))

    out.append(("signin", console.client().get("/console/signin").text))
    bad = console.client().post("/console/signin", data={"name": "x", "password": "y"})
    out.append(("signin-refused", bad.text))
    get("overview", "/console/")
    get("alerts", "/console/alerts")
    get("alerts-filtered", "/console/alerts?state=open&severity=Extreme&site=川反")
    get("alerts-bad-filter", "/console/alerts?since=yesterday", 422)
    get("alert", f"/console/alerts/{alert_id}")
    post("alert-bad-note", f"/console/alerts/{alert_id}/ack", {"note": "x" * 2001}, 422)
    get("devices", "/console/devices")
    get("device", "/console/devices/fl-a11y")
    get("gateways", "/console/gateways")
    get("reports", "/console/reports")
    get("report", f"/console/reports/{ref}")
    post("report-bad-time", f"/console/reports/{ref}/confirm", {"confirmed_at": "昨日"}, 422)
    get("kpi", "/console/reports/kpi")
    get("maintenance", "/console/maintenance")
    post("maintenance-errors", "/console/maintenance", {"site": "", "device_id": ""}, 422)
    get("admin", "/console/admin")
    post("admin-errors", "/console/admin/users", {"name": "bad name!", "role": "viewer"}, 422)
    get("not-found", "/console/alerts/al-none", 404)
    return out


def test_every_console_page_passes_the_audit(pages: list[tuple[str, str]]) -> None:
    for name, html in pages:
        try:
            audit(html)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
    assert len(pages) >= 20


def test_tables_have_captions_and_header_scopes(pages: list[tuple[str, str]]) -> None:
    for name, html in pages:
        assert html.count("<table") == html.count("<caption>"), name
        assert "<th>" not in html, f"{name}: a <th> without scope"


def test_no_information_by_colour_alone(pages: list[tuple[str, str]]) -> None:
    badges = 0
    for name, html in pages:
        for text in _BADGE.findall(html):
            assert text.strip(), f"{name}: a coloured badge without text"
            badges += 1
    assert badges >= 20
    overview = dict(pages)["overview"]
    # the map's states are in its legend and the table beside it, as words
    for word in ("危険", "警報", "オフライン", "不明", "正常"):
        assert f">{word}</span>" in overview
    assert "冠水危険" in overview and "mp-a11y" in overview


def test_every_action_is_a_plain_form(pages: list[tuple[str, str]]) -> None:
    for name, html in pages:
        assert not re.search(r"\son[a-z]+=", html), f"{name}: inline event handler"
        for form in re.findall(r"<form[^>]*>", html):
            method = re.search(r'method="(get|post)"', form)
            assert method and 'action="' in form, f"{name}: {form}"


def test_errors_are_announced_and_tied_to_their_fields(pages: list[tuple[str, str]]) -> None:
    for name in (
        "alerts-bad-filter",
        "alert-bad-note",
        "report-bad-time",
        "maintenance-errors",
        "admin-errors",
    ):
        html = dict(pages)[name]
        assert 'role="alert"' in html, name
        assert 'aria-invalid="true"' in html, name
    assert "「昨日」は日時として読めません" in dict(pages)["report-bad-time"]
    assert "「yesterday」は日時として読めません" in dict(pages)["alerts-bad-filter"]


def test_stylesheet_colours_have_aa_contrast() -> None:
    css = CSS.read_text(encoding="utf-8")
    checked = 0
    for selector, body in re.findall(
        r"([^{}]+)\{([^}]*)\}", re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    ):
        fg = re.search(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})", body)
        bg = re.search(r"background:\s*(#[0-9a-fA-F]{3,6})", body)
        if not fg:
            continue
        background = bg.group(1) if bg else "#ffffff"
        ratio = contrast(fg.group(1), background)
        assert ratio >= 4.5, f"{selector.strip()}: {fg.group(1)} on {background} is {ratio:.2f}"
        checked += 1
    assert checked >= 15
    outline = re.search(r"outline:\s*3px solid (#[0-9a-fA-F]{6})", css)
    assert outline and contrast(outline.group(1), "#ffffff") >= 3.0
