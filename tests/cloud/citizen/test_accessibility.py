"""JIS X 8341-3 / WCAG 2.1 AA basics, checked on the HTML every page really serves:
``<html lang="ja">``, every form control has a ``<label for>``, error messages are tied to
their fields, the skip link works, ids are unique, and the colours have enough contrast."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from cloud.citizen.catalog import load_procedures
from cloud.db.models import DeviceRow
from cloud.store.base import Point

_NO_LABEL_TYPES = {"hidden", "submit", "button", "image", "reset"}


class Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.controls: list[tuple[str, dict[str, str | None]]] = []
        self.describedby: list[str] = []
        self.anchors: list[str] = []
        self.first_link: str | None = None
        self.tabindex: list[int] = []
        self.title = ""
        self._in_title = False
        self.buttons: list[str] = []
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "label" and a.get("for"):
            self.label_for.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") not in _NO_LABEL_TYPES:
            self.controls.append((tag, a))
        if a.get("aria-describedby"):
            self.describedby.extend(str(a["aria-describedby"]).split())
        if tag == "a" and a.get("href"):
            href = str(a["href"])
            if self.first_link is None:
                self.first_link = href
            if href.startswith("#"):
                self.anchors.append(href[1:])
        if a.get("tabindex") is not None:
            self.tabindex.append(int(str(a["tabindex"])))
        if tag == "title":
            self._in_title = True
        if tag == "button":
            self._in_button = True
            self.buttons.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._in_button:
            self.buttons[-1] += data.strip()


def audit(html: str) -> Audit:
    a = Audit()
    a.feed(html)
    a.close()
    assert a.lang == "ja", "<html lang> must be ja"
    assert a.title.strip(), "every page needs a <title>"
    dupes = {i for i in a.ids if a.ids.count(i) > 1}
    assert not dupes, f"duplicate ids {dupes}"
    for tag, attrs in a.controls:
        cid = attrs.get("id")
        assert cid, f"<{tag} name={attrs.get('name')}> has no id for a label"
        assert cid in a.label_for, f"<{tag} id={cid}> has no <label for>"
    missing = set(a.describedby) - set(a.ids)
    assert not missing, f"aria-describedby points at missing ids {missing}"
    missing_anchor = set(a.anchors) - set(a.ids)
    assert not missing_anchor, f"in-page links to missing ids {missing_anchor}"
    assert a.first_link == "#main" and "main" in a.ids, "first link must skip to #main"
    assert all(t <= 0 for t in a.tabindex), "positive tabindex breaks keyboard order"
    assert all(a.buttons), "every button needs visible text"
    return a


@pytest.fixture
def pages(citizen, images) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(name, html) of every page kind, including error states, with real data behind them."""
    c = citizen.client
    now = datetime.now(UTC)
    with citizen.sm() as s, s.begin():
        s.add(
            DeviceRow(
                device_id="fl-a11y",
                kind="flood_sensor",
                site="川反アンダーパス",
                area="大町",
                lat=39.7199,
                lon=140.1200,
            )
        )
    citizen.store.write([Point("flood_sensor", {"device": "fl-a11y"}, {"depth": 23.5}, now)])
    out: list[tuple[str, str]] = []

    def get(name: str, url: str, status: int = 200) -> None:
        r = c.get(url)
        assert r.status_code == status, (url, r.status_code)
        out.append((name, r.text))

    get("home", "/citizen/")
    get("subscribe", "/citizen/subscribe")
    r = c.post("/citizen/subscribe", data={"channel": "email", "address": "x", "area": "無い町"})
    assert r.status_code == 422
    out.append(("subscribe-errors", r.text))
    r = c.post(
        "/citizen/subscribe",
        data={
            "channel": "email",
            "address": "a11y@example.jp",
            "kinds": ["flood"],
            "area": "山王",
            "consent": "yes",
        },
    )
    assert r.status_code == 200
    out.append(("subscribe-sent", r.text))
    confirm = citizen.mailbox.confirmation_link("a11y@example.jp")
    path = urlsplit(confirm).path
    get("confirm", path)
    manage = path.removesuffix("/confirm")
    get("subscription", manage)
    r = c.post(manage, data={"kinds": [], "area": ""})
    assert r.status_code == 422
    out.append(("subscription-errors", r.text))
    get("unsubscribe", manage + "/unsubscribe")
    get("not-found", "/citizen/subscriptions/nope", 404)
    get("report-form", "/citizen/reports/new")
    r = c.post("/citizen/reports", data={"category": "road:x"}, files={"photo": ("a.jpg", b"x")})
    assert r.status_code == 422
    out.append(("report-errors", r.text))
    r = c.post(
        "/citizen/reports",
        data={
            "category": "park:light",
            "description": "街灯が消えています",
            "use_photo_location": "yes",
            "email": "a11y@example.jp",
        },
        files={"photo": ("p.jpg", images.jpeg_with_gps(39.7186, 140.1190), "image/jpeg")},
    )
    assert r.status_code == 200
    out.append(("report-status", r.text))
    get("report-lookup", "/citizen/reports")
    get("report-lookup-error", "/citizen/reports?code=no-such-code", 404)
    get("report-by-ref", "/citizen/reports/AK-2026-999999", 404)
    get("procedures", "/citizen/procedures")
    for ev in load_procedures().events:
        get(f"procedures-{ev.id}", f"/citizen/procedures?event={ev.id}")
    get("flood", "/citizen/flood")
    return out


def test_every_page_passes_the_audit(pages: list[tuple[str, str]]) -> None:
    assert len(pages) >= 18
    for name, html in pages:
        try:
            audit(html)
        except AssertionError as e:
            raise AssertionError(f"page {name}: {e}") from e


def test_errors_are_announced_and_tied_to_their_fields(pages: list[tuple[str, str]]) -> None:
    html = dict(pages)["subscribe-errors"]
    assert 'role="alert"' in html
    for field in ("address", "area", "consent", "kinds"):
        assert f'id="err-{field}"' in html
        # the control (or its fieldset) names the message, and is marked invalid
        tag = re.search(rf'<[^>]*id="{field}"[^>]*>', html)
        assert tag and f"err-{field}" in tag.group(0) and 'aria-invalid="true"' in tag.group(0)
        # the summary links to the field
        assert f'href="#{field}"' in html


def test_flood_page_names_stage_and_nearest_flood_site(pages: list[tuple[str, str]]) -> None:
    html = dict(pages)["flood"]
    assert "川反アンダーパス" in html and "警戒" in html and "23.5 cm" in html
    assert "国土地理院" in html  # attribution required by the data's source


def _hex(c: str) -> tuple[float, float, float]:
    c = c.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    return tuple(int(c[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def _luminance(c: str) -> float:
    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(v) for v in _hex(c))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_text_colours_have_aa_contrast(pages: list[tuple[str, str]]) -> None:
    css = re.search(r"<style>(.*?)</style>", dict(pages)["home"], re.S)
    assert css
    checked = 0
    for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", css.group(1)):
        fg = re.search(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})", body)
        bg = re.search(r"background:\s*(#[0-9a-fA-F]{3,6})", body)
        if not fg:
            continue
        background = bg.group(1) if bg else "#ffffff"  # the page background
        ratio = contrast(fg.group(1), background)
        assert ratio >= 4.5, f"{selector.strip()}: {fg.group(1)} on {background} is {ratio:.2f}"
        checked += 1
    assert checked >= 8
    # the focus outline (a UI component) must stand out from white by 3:1
    outline = re.search(r"outline:\s*3px solid (#[0-9a-fA-F]{6})", css.group(1))
    assert outline and contrast(outline.group(1), "#ffffff") >= 3.0
