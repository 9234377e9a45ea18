"""Console actions not walked by the browser test, through the real app and stores:
maintenance change and cancel, resolve, admin user management, bad input naming the
field and the value, and the report KPI's at-risk highlighting."""

from __future__ import annotations

from sqlalchemy import select

from cloud.console.users import list_users
from cloud.db.models import MaintenanceWindowRow
from tests.cloud.console.conftest import PASSWORD, Console, csrf_of, sign_in
from tests.cloud.console.data import add_device, file_report, open_alert


def _csrf(client) -> str:  # type: ignore[no-untyped-def]
    return csrf_of(client.get("/console/").text)


def test_maintenance_create_change_cancel_for_a_device(console: Console) -> None:
    add_device(console.service, "mp-001", "manhole_pump", site="新屋ポンプ場")
    op = console.client("operator")
    r = op.post(
        "/console/maintenance",
        data={
            "csrf": _csrf(op),
            "device_id": "mp-001",
            "starts_at": "2031-05-01T09:00",
            "ends_at": "2031-05-01T12:00",
            "reason": "点検",
        },
    )
    assert "保守期間を登録しました（operator-user）" in r.text
    with console.service.sessionmaker() as s:
        w = s.scalars(select(MaintenanceWindowRow)).one()
    assert w.device_id == "mp-001" and w.starts_at.hour == 0  # 09:00 JST is 00:00 UTC
    r = op.post(
        f"/console/maintenance/{w.id}",
        data={
            "csrf": _csrf(op),
            "starts_at": "2031-05-01T09:00",
            "ends_at": "2031-05-01T08:00",
            "reason": "点検",
        },
    )
    assert r.status_code == 422 and "終了日時は開始日時より後にしてください" in r.text
    r = op.post(
        f"/console/maintenance/{w.id}",
        data={
            "csrf": _csrf(op),
            "starts_at": "2031-05-01T09:00",
            "ends_at": "2031-05-01T15:00",
            "reason": "点検（延長）",
        },
    )
    assert "保守期間を変更しました" in r.text
    r = op.post(f"/console/maintenance/{w.id}/cancel", data={"csrf": _csrf(op)})
    assert "保守期間を取り消しました" in r.text
    window = console.service.alerts.maintenance.get(w.id)
    assert (window.updated_by, window.cancelled_by) == ("operator-user", "operator-user")
    assert window.reason == "点検（延長）" and window.ends_at.hour == 6
    r = op.post(
        "/console/maintenance",
        data={
            "csrf": _csrf(op),
            "device_id": "nope-1",
            "starts_at": "2031-05-01T09:00",
            "ends_at": "2031-05-01T12:00",
        },
    )
    assert r.status_code == 422 and "機器ID「nope-1」は登録されていません" in r.text


def test_resolve_with_a_note_and_a_second_ack_is_refused(console: Console) -> None:
    add_device(console.service, "fl-1", "flood_sensor")
    alert_id = open_alert(console.service, "fl-1")
    op = console.client("operator")
    r = op.post(f"/console/alerts/{alert_id}/resolve", data={"csrf": _csrf(op), "note": "排水完了"})
    assert "解決にしました（operator-user）" in r.text and "排水完了" in r.text
    r = op.post(f"/console/alerts/{alert_id}/ack", data={"csrf": _csrf(op), "note": "遅れて確認"})
    assert r.status_code == 409 and "resolved" in r.text
    assert console.service.alerts.get(alert_id).alert.state.value == "resolved"


def test_admin_adds_a_person_changes_role_and_disables(console: Console) -> None:
    admin = console.client("admin")
    r = admin.post(
        "/console/admin/users",
        data={
            "csrf": _csrf(admin),
            "name": "kato",
            "display_name": "加藤",
            "role": "viewer",
            "password": "kato password 1",
        },
    )
    assert r.status_code == 200 and "kato" in r.text
    r = admin.post(
        "/console/admin/users",
        data={"csrf": _csrf(admin), "name": "ito", "role": "viewer", "password": "short"},
    )
    assert r.status_code == 422 and "password must be 12 to 1024 characters (it has 5)" in r.text
    admin.post(
        "/console/admin/users/kato",
        data={"csrf": _csrf(admin), "action": "role", "role": "operator"},
    )
    admin.post("/console/admin/users/kato", data={"csrf": _csrf(admin), "action": "disable"})
    kato = next(u for u in list_users(console.service.sessionmaker) if u.name == "kato")
    assert kato.role.value == "operator" and kato.disabled
    r = admin.post(
        "/console/admin/users/admin-user", data={"csrf": _csrf(admin), "action": "disable"}
    )
    assert r.status_code == 422 and "you cannot disable yourself" in r.text
    operator = console.client("operator")
    assert operator.get("/console/admin").status_code == 403
    assert sign_in(console.client(), "kato", "kato password 1").status_code == 401
    assert sign_in(console.client(), "admin-user", PASSWORD).status_code == 303


def test_report_queue_and_kpi_highlight_reports_at_risk(console: Console) -> None:
    at_risk = file_report(console.service, "六日前の通報", days_ago=6)
    overdue = file_report(console.service, "九日前の通報", days_ago=9)
    fresh = file_report(console.service, "今日の通報")
    viewer = console.client("viewer")
    queue = viewer.get("/console/reports").text
    rows = {r: queue.split(r + "</a>")[1].split("</tr>")[0] for r in (at_risk, overdue, fresh)}
    assert "期限間近" in rows[at_risk] and "期限超過" in rows[overdue]
    assert "余裕あり" in rows[fresh]
    assert queue.index(overdue) < queue.index(at_risk) < queue.index(fresh)  # oldest first
    kpi = viewer.get("/console/reports/kpi").text
    assert '<tr class="at-risk"><th scope="row">未割当</th>' in kpi
    assert '<span class="risk">1 件</span>' in kpi


def test_bad_filter_names_the_field_and_value(console: Console) -> None:
    viewer = console.client("viewer")
    r = viewer.get("/console/alerts?severity=Huge")
    assert r.status_code == 422 and "重要度「Huge」は選べる値ではありません" in r.text
    r = viewer.get("/console/devices?kind=toaster")
    assert r.status_code == 422 and "種類「toaster」は選べる値ではありません" in r.text
