"""Alert subscription: consent recorded, confirmation link by real SMTP, only the token's
hash stored, only that token sees or changes the subscription, one-step unsubscribe."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, text

from cloud.citizen.subscriptions import mask_address, normalise_phone, token_hash
from cloud.db.models import DeviceRow, SubscriptionRow


def subscribe(citizen, address: str, **extra: object) -> str:  # type: ignore[no-untyped-def]
    data = {
        "channel": "email",
        "address": address,
        "kinds": ["flood", "heat"],
        "area": "土崎港",
        "consent": "yes",
    } | extra
    r = citizen.client.post("/citizen/subscribe", data=data)
    assert r.status_code == 200, r.text
    assert "確認用のリンクを送信しました" in r.text
    return urlsplit(citizen.mailbox.confirmation_link(address)).path


def test_subscribe_confirm_change_unsubscribe(citizen, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    address = "hanako@example.jp"
    confirm_path = subscribe(citizen, address)
    token = confirm_path.split("/")[3]
    assert len(token) >= 40

    (msg,) = citizen.mailbox.to(address)
    assert msg["Subject"] == "【秋田市】防災情報の配信登録の確認"
    assert msg["From"] == "bousai@city.test"

    with citizen.sm() as s:
        row = s.scalars(select(SubscriptionRow)).one()
        assert row.token_hash == token_hash(token)
        assert row.consent_at is not None and row.confirmed_at is None
        assert row.kinds == ["flood", "heat"] and row.area == "土崎港"
        # the token itself is nowhere in the database
        dump = "\n".join(str(r) for r in s.execute(text("SELECT * FROM subscriptions")))
        assert token not in dump

    # GET shows a button only (mail scanners prefetch links); POST confirms
    page = citizen.client.get(confirm_path)
    assert "登録を確定する" in page.text
    with citizen.sm() as s:
        assert s.scalars(select(SubscriptionRow.confirmed_at)).one() is None
    r = citizen.client.post(confirm_path)
    assert r.status_code == 200 and "登録が完了しました" in r.text
    with citizen.sm() as s:
        assert s.scalars(select(SubscriptionRow.confirmed_at)).one() is not None

    manage = confirm_path.removesuffix("/confirm")
    page = citizen.client.get(manage).text
    assert "配信中" in page and "h***@example.jp" in page and address not in page

    # change to a point + radius, heat only
    r = citizen.client.post(
        manage,
        data={
            "kinds": ["heat"],
            "area": "",
            "lat": "39.7570",
            "lon": "140.0650",
            "radius_m": "1500",
        },
    )
    assert r.status_code == 200 and "登録内容を変更しました" in r.text
    with citizen.sm() as s:
        row = s.scalars(select(SubscriptionRow)).one()
        assert (row.kinds, row.area, row.lat, row.lon, row.radius_m) == (
            ["heat"],
            None,
            39.757,
            140.065,
            1500.0,
        )

    # one step: a single POST stops it and erases the contact address
    r = citizen.client.post(manage + "/unsubscribe")
    assert r.status_code == 200 and "配信を停止しました" in r.text
    with citizen.sm() as s:
        row = s.scalars(select(SubscriptionRow)).one()
        assert row.unsubscribed_at is not None and row.address == ""
    assert "配信停止済み" in citizen.client.get(manage).text
    # a stopped subscription cannot be changed or re-confirmed back to life
    assert citizen.client.post(manage, data={"kinds": ["flood"], "area": "山王"}).status_code == 409
    citizen.client.post(confirm_path)
    with citizen.sm() as s:
        assert s.scalars(select(SubscriptionRow.unsubscribed_at)).one() is not None

    # contact details never reach our logs (the test SMTP server's own log is not ours)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("cloud"))
    assert "subscription_created" in logged
    assert address not in logged and "hanako" not in logged


def test_a_token_sees_only_its_own_subscription(citizen) -> None:  # type: ignore[no-untyped-def]
    a = subscribe(citizen, "a@example.jp", area="山王").removesuffix("/confirm")
    b = subscribe(citizen, "b@example.jp", area="新屋").removesuffix("/confirm")
    page_a = citizen.client.get(a).text
    assert "山王" in page_a and "a***@example.jp" in page_a and "b***@" not in page_a
    page_b = citizen.client.get(b).text
    assert "新屋" in page_b and "b***@example.jp" in page_b and "a***@" not in page_b
    # a's token cannot be bent into b's: a tampered token is simply unknown
    tampered = a[:-2] + ("AA" if not a.endswith("AA") else "BB")
    assert citizen.client.get(tampered).status_code == 404
    assert citizen.client.post(tampered + "/unsubscribe").status_code == 404
    assert (
        citizen.client.post(tampered, data={"kinds": ["flood"], "area": "山王"}).status_code == 404
    )
    with citizen.sm() as s:
        assert (
            s.scalar(select(SubscriptionRow.area).where(SubscriptionRow.address == "b@example.jp"))
            == "新屋"
        )


def test_device_registry_areas_are_offered(citizen) -> None:  # type: ignore[no-untyped-def]
    with citizen.sm() as s, s.begin():
        s.add(DeviceRow(device_id="fl-x", kind="flood_sensor", area="秋田駅東口地区"))
    page = citizen.client.get("/citizen/subscribe").text
    assert '<option value="秋田駅東口地区"' in page
    subscribe(citizen, "east@example.jp", area="秋田駅東口地区")


def test_smtp_down_stores_nothing(citizen) -> None:  # type: ignore[no-untyped-def]
    citizen.smtp.stop()
    r = citizen.client.post(
        "/citizen/subscribe",
        data={
            "channel": "email",
            "address": "down@example.jp",
            "kinds": ["flood"],
            "area": "山王",
            "consent": "yes",
        },
    )
    assert r.status_code == 503 and "登録は行われていません" in r.text
    with citizen.sm() as s:
        assert s.scalars(select(SubscriptionRow)).all() == []


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        ("090-1234-5678", "+819012345678"),
        ("０８０１２３４５６７８", "+818012345678"),
        ("+81 70 1234 5678", "+817012345678"),
        ("03-1234-5678", None),
        ("hello", None),
    ],
)
def test_phone_numbers(raw: str, expect: str | None) -> None:
    assert normalise_phone(raw) == expect


def test_masking() -> None:
    assert mask_address("email", "taro@example.jp") == "t***@example.jp"
    assert mask_address("sms", "+819012345678") == "+81****5678"


def test_alert_messages_get_a_signed_one_step_unsubscribe_link(citizen) -> None:  # type: ignore[no-untyped-def]
    """The notify router builds each resident's unsubscribe link with our ``token_for``;
    that link stops the subscription in one POST but cannot show or change it."""
    from datetime import UTC, datetime

    from cloud.citizen.subscriptions import token_for
    from cloud.notify.config import NotifyConfig
    from cloud.notify.routing import Router
    from schemas.alert import Alert

    manage = subscribe(citizen, "alert@example.jp", area="大町").removesuffix("/confirm")
    other = subscribe(citizen, "other@example.jp", area="大町").removesuffix("/confirm")
    citizen.client.post(manage + "/confirm")
    citizen.client.post(other + "/confirm")
    now = datetime.now(UTC)
    alert = Alert(
        id="a1",
        kind="flood_stage",
        severity="Severe",
        area="大町",
        title="冠水 警戒",
        public=True,
        started_at=now,
        updated_at=now,
    )
    router = Router(
        NotifyConfig(public_base_url="https://bousai.city.test"),
        citizen.sm,
        token_for=token_for(citizen.sm),
    )
    links = {r.address: r.unsubscribe_url for r in router.residents(alert)}
    assert set(links) == {"alert@example.jp", "other@example.jp"}
    url = links["alert@example.jp"]
    assert url and url.startswith("https://bousai.city.test/citizen/subscriptions/u")
    path = urlsplit(url).path
    signed = path.split("/")[3]
    assert token_hash(signed) not in {manage.split("/")[3], other.split("/")[3]}

    # it cannot show or change the subscription: those need the subscriber's own token
    assert citizen.client.get(path.removesuffix("/unsubscribe")).status_code == 404
    # tampering with the id or the signature is refused
    sub_id, mac = signed[1:].split(".")
    forged = f"u{int(sub_id) + 1}.{mac}"
    assert citizen.client.post(f"/citizen/subscriptions/{forged}/unsubscribe").status_code == 404
    # GET shows one button; one POST stops it
    assert "配信を停止する" in citizen.client.get(path).text
    r = citizen.client.post(path)
    assert r.status_code == 200 and "配信を停止しました" in r.text
    with citizen.sm() as s:
        rows = {r.id: r for r in s.scalars(select(SubscriptionRow))}
    assert rows[int(sub_id)].unsubscribed_at is not None
    assert [r.unsubscribed_at for i, r in rows.items() if i != int(sub_id)] == [None]
    # and the router stops sending to it
    assert [r.address for r in router.residents(alert)] == ["other@example.jp"]
