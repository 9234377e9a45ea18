"""Security of the console against the real app and database: roles, CSRF, idle timeout,
lockout after wrong passwords, escaping of whatever residents and devices send, headers
and cookie flags, and the audit trail under each person's name."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from cloud.console.config import ConsoleSettings
from cloud.db.console import ConsoleEventRow, StaffSessionRow, StaffUserRow
from cloud.db.models import AlertEventRow
from tests.cloud.console.conftest import PASSWORD, Console, csrf_of, sign_in
from tests.cloud.console.data import add_device, file_report, open_alert

ACK_BUTTON = "確認済みにする"


def _flood_alert(console: Console) -> str:
    add_device(console.service, "fl-sec", "flood_sensor", site="川反通り", lat=39.72, lon=140.12)
    return open_alert(console.service, "fl-sec")


def test_viewer_sees_no_ack_button_and_gets_403(console: Console) -> None:
    alert_id = _flood_alert(console)
    viewer = console.client("viewer")
    page = viewer.get(f"/console/alerts/{alert_id}")
    assert page.status_code == 200
    assert ACK_BUTTON not in page.text and "閲覧権限のため" in page.text
    r = viewer.post(
        f"/console/alerts/{alert_id}/ack", data={"csrf": csrf_of(page.text), "note": "x"}
    )
    assert r.status_code == 403
    assert "operator 以上の権限が必要です" in r.text
    assert console.service.alerts.get(alert_id).alert.state.value == "open"
    operator = console.client("operator")
    assert ACK_BUTTON in operator.get(f"/console/alerts/{alert_id}").text


def test_post_without_or_with_a_wrong_csrf_token_is_refused(console: Console) -> None:
    alert_id = _flood_alert(console)
    operator = console.client("operator")
    for data in ({"note": "no token"}, {"note": "wrong", "csrf": "x" * 43}):
        r = operator.post(f"/console/alerts/{alert_id}/ack", data=data)
        assert r.status_code == 403, data
        assert "csrf" in r.text
    assert console.service.alerts.get(alert_id).alert.state.value == "open"
    # the sign-in form too (double-submit cookie): a cross-site login is refused
    fresh = console.client()
    r = fresh.post("/console/signin", data={"name": "operator-user", "password": PASSWORD})
    assert r.status_code == 403


def test_session_ends_after_idle_timeout(console: Console) -> None:
    console.app.state.console_settings = ConsoleSettings(idle_timeout_s=600)
    operator = console.client("operator")
    assert operator.get("/console/").status_code == 200
    # the session was last used 11 minutes ago (moved back in the database, no sleeping)
    with console.service.sessionmaker() as s, s.begin():
        s.execute(
            update(StaffSessionRow).values(last_seen=datetime.now(UTC) - timedelta(minutes=11))
        )
    r = operator.get("/console/", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/signin?expired=1"
    with console.service.sessionmaker() as s:
        assert s.scalars(select(StaffSessionRow)).all() == []
    page = operator.get(r.headers["location"])
    assert "一定時間操作がなかったため" in page.text


def test_session_used_within_idle_timeout_stays(console: Console) -> None:
    console.app.state.console_settings = ConsoleSettings(idle_timeout_s=600)
    operator = console.client("operator")
    with console.service.sessionmaker() as s, s.begin():
        s.execute(
            update(StaffSessionRow).values(last_seen=datetime.now(UTC) - timedelta(minutes=9))
        )
    assert operator.get("/console/", follow_redirects=False).status_code == 200


def test_live_refreshes_do_not_keep_an_idle_session_alive(console: Console) -> None:
    # a console left open on the overview refreshes itself; that is not a person using it
    console.app.state.console_settings = ConsoleSettings(idle_timeout_s=600)
    operator = console.client("operator")
    eight_ago = datetime.now(UTC) - timedelta(minutes=8)
    with console.service.sessionmaker() as s, s.begin():
        s.execute(update(StaffSessionRow).values(last_seen=eight_ago))
    live = {"X-Akita-Live": "1"}
    assert operator.get("/console/", headers=live, follow_redirects=False).status_code == 200
    with console.service.sessionmaker() as s:
        (row,) = s.scalars(select(StaffSessionRow)).all()
        assert abs(row.last_seen.replace(tzinfo=UTC) - eight_ago) < timedelta(seconds=1)
    with console.service.sessionmaker() as s, s.begin():
        s.execute(
            update(StaffSessionRow).values(last_seen=datetime.now(UTC) - timedelta(minutes=11))
        )
    r = operator.get("/console/", headers=live, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/signin?expired=1"


def test_ten_wrong_passwords_lock_the_account_for_the_configured_time(console: Console) -> None:
    console.app.state.console_settings = ConsoleSettings(max_failures=10, lockout_s=1200)
    console.client("operator")  # creates operator-user
    c = console.client()
    for i in range(9):
        r = sign_in(c, "operator-user", f"wrong password {i}")
        assert r.status_code == 401, i
        assert "利用者名またはパスワードが違います" in r.text
    r = sign_in(c, "operator-user", "wrong password 10")
    assert r.status_code == 423
    assert "ロックされています" in r.text
    with console.service.sessionmaker() as s:
        user = s.scalars(select(StaffUserRow).where(StaffUserRow.name == "operator-user")).one()
        assert user.locked_until is not None
        left = user.locked_until - datetime.now(UTC)
        assert timedelta(seconds=1100) < left <= timedelta(seconds=1200)
        events = [e.action for e in s.scalars(select(ConsoleEventRow))]
        assert "lockout" in events
    # the right password does not open a locked account, in another app process either
    from cloud.api.app import create_app

    other = create_app(console.service)
    other.state.console_settings = ConsoleSettings(lockout_s=1200)
    from fastapi.testclient import TestClient

    r = sign_in(TestClient(other), "operator-user", PASSWORD)
    assert r.status_code == 423
    # once the lock has run out (moved back in the database), the password works again
    with console.service.sessionmaker() as s, s.begin():
        s.execute(
            update(StaffUserRow).values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert sign_in(c, "operator-user", PASSWORD).status_code == 303


def test_unknown_name_and_disabled_account_answer_like_a_wrong_password(
    console: Console,
) -> None:
    from cloud.console.users import set_disabled

    console.client("viewer")
    c = console.client()
    assert sign_in(c, "nobody-here", PASSWORD).status_code == 401
    set_disabled(console.service.sessionmaker, "viewer-user", True, actor="test")
    r = sign_in(c, "viewer-user", PASSWORD)
    assert r.status_code == 401 and "利用者名またはパスワードが違います" in r.text


def test_disabling_an_account_ends_its_sessions(console: Console) -> None:
    from cloud.console.users import set_disabled

    viewer = console.client("viewer")
    assert viewer.get("/console/", follow_redirects=False).status_code == 200
    set_disabled(console.service.sessionmaker, "viewer-user", True, actor="admin")
    assert viewer.get("/console/", follow_redirects=False).status_code == 303


XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_xss_in_report_text_and_device_name_is_escaped_on_every_page(console: Console) -> None:
    svc = console.service
    add_device(
        svc,
        "fl-xss",
        "flood_sensor",
        site=XSS,
        area=XSS,
        lat=39.7,
        lon=140.1,
        state="offline",
        state_reason=XSS,
    )
    alert_id = open_alert(svc, "fl-xss", title=f"冠水 {XSS}")
    ref = file_report(svc, f"穴があります {XSS}")
    admin = console.client("admin")
    page = admin.get(f"/console/reports/{ref}")
    admin.post(
        f"/console/reports/{ref}/triage",
        data={
            "csrf": csrf_of(page.text),
            "status": "triaged",
            "department": XSS,
            "public_note": XSS,
        },
    )
    mw = admin.get("/console/maintenance")
    admin.post(
        "/console/maintenance",
        data={
            "csrf": csrf_of(mw.text),
            "site": XSS,
            "starts_at": "2030-01-01T09:00",
            "ends_at": "2030-01-01T17:00",
            "reason": XSS,
        },
    )
    urls = [
        "/console/",
        "/console/alerts",
        f"/console/alerts/{alert_id}",
        "/console/devices",
        "/console/devices/fl-xss",
        "/console/reports",
        f"/console/reports/{ref}",
        "/console/reports/kpi",
        "/console/maintenance",
        "/console/admin",
        "/console/alerts?site=" + XSS,
    ]
    seen = 0
    for url in urls:
        r = admin.get(url)
        assert r.status_code == 200, (url, r.status_code)
        assert "<script>alert" not in r.text, url
        assert "<img src=x" not in r.text, url
        seen += "&lt;script&gt;alert" in r.text
    assert seen >= 8  # the payload is shown, as text, on the pages that show that data
    # the map's data is JSON (the script sets it as text content, never as HTML)
    data = admin.get("/console/map.json").json()
    assert any(m["site"] == XSS for m in data["markers"])


def test_pages_send_a_strict_csp_and_no_store(console: Console) -> None:
    admin = console.client("admin")
    for url in ("/console/signin", "/console/", "/console/alerts", "/console/admin"):
        r = admin.get(url)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp, url
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "img-src 'self' data: https://cyberjapandata.gsi.go.jp;" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        # no inline script or style anywhere
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), url
        assert "<style" not in r.text and " style=" not in r.text, url


def test_session_cookie_flags_over_http_and_tls(console: Console) -> None:
    from fastapi.testclient import TestClient

    console.client("viewer")
    r = sign_in(TestClient(console.app), "viewer-user")
    cookie = next(
        v
        for k, v in r.headers.multi_items()
        if k == "set-cookie" and v.startswith("akita_console=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # development over plain http (docs/console.md)
    r = sign_in(TestClient(console.app, base_url="https://testserver"), "viewer-user")
    cookie = next(
        v
        for k, v in r.headers.multi_items()
        if k == "set-cookie" and v.startswith("akita_console=")
    )
    assert "Secure" in cookie and "HttpOnly" in cookie
    console.app.state.console_settings = ConsoleSettings(secure_cookie="always")
    r = sign_in(TestClient(console.app), "viewer-user")
    assert "Secure" in r.headers["set-cookie"]


def test_actions_are_recorded_under_the_persons_name(console: Console) -> None:
    alert_id = _flood_alert(console)
    operator = console.client("operator")
    page = operator.get(f"/console/alerts/{alert_id}")
    r = operator.post(
        f"/console/alerts/{alert_id}/ack", data={"csrf": csrf_of(page.text), "note": "班を派遣"}
    )
    assert r.status_code == 200 and "確認済みにしました（operator-user）" in r.text
    with console.service.sessionmaker() as s:
        ack = s.scalars(select(AlertEventRow).where(AlertEventRow.action == "ack")).one()
        assert (ack.actor, ack.note) == ("operator-user", "班を派遣")
        actions = {(e.actor, e.action) for e in s.scalars(select(ConsoleEventRow))}
    assert ("operator-user", "sign_in") in actions
    operator.post("/console/signout", data={"csrf": csrf_of(r.text)})
    with console.service.sessionmaker() as s:
        actions = {(e.actor, e.action) for e in s.scalars(select(ConsoleEventRow))}
    assert ("operator-user", "sign_out") in actions
    assert operator.get("/console/", follow_redirects=False).status_code == 303


def test_api_token_secret_never_reaches_a_url_or_the_audit(console: Console) -> None:
    admin = console.client("admin")
    page = admin.get("/console/admin")
    r = admin.post(
        "/console/admin/tokens",
        data={"csrf": csrf_of(page.text), "token_name": "grafana-ro", "token_role": "viewer"},
    )
    secret = re.search(r'id="new-token" value="(akt_[^"]+)"', r.text)
    assert secret, r.text[:500]
    with console.service.sessionmaker() as s:
        notes = " ".join(f"{e.target} {e.note}" for e in s.scalars(select(ConsoleEventRow)))
    assert secret.group(1) not in notes and "grafana-ro" in notes
