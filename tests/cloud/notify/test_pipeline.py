"""End to end on the cloud side: gateway messages on a real Mosquitto -> the CloudService
(ingest, store, detectors, alert lifecycle) -> the notifier it builds from its settings ->
aiosmtpd and the HTTP SMS sink."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.db.models import SubscriptionRow
from cloud.notify.email import EmailChannel
from cloud.service import CloudService
from cloud.settings import CloudSettings
from schemas import topics
from schemas.codec import encode_batch, encode_model
from schemas.wire import Batch, CallUnitReading, DeviceInfo, FloodSensorReading, GatewayMeta
from tests.cloud.local import local_settings
from tests.cloud.notify.conftest import HttpSink, SmtpSink
from tests.servers import Mosquitto, wait_for

ONCALL_PHONE = "+819055556666"


@pytest.fixture
def service(
    tmp_path: Path, mosquitto: Mosquitto, smtp_server: SmtpSink, http_sink: HttpSink, unique: str
) -> Iterator[CloudService]:
    settings = CloudSettings.from_mapping(
        local_settings(
            tmp_path,
            mosquitto.port,
            unique,
            sms={"provider": "twilio", "url": http_sink.url, "sender": "+15005550006",
                 "username": "AC0000000000000000000000000000beef",
                 "password": "tw-token-for-tests"},
            notify={
                "public_base_url": "https://alerts.city.akita.example",
                "recipient_salt": f"salt-{unique}",
                "groups": [{"name": "care", "members": [
                    {"channel": "sms", "address": ONCALL_PHONE},
                    {"channel": "email", "address": "care.oncall@city.akita.example"}]}],
                "routes": [{"domain": "care", "groups": ["care"]}],
                "retry": {"attempts": 2, "backoff_s": 0.01},
            },
        ),
        source="test",
    )  # fmt: skip
    # the e-mail channel is injected: the test SMTP server's certificate is self-signed
    svc = CloudService(settings, email=EmailChannel(smtp_server.settings()))
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


def subscribe(svc: CloudService, address: str, **where: object) -> None:
    now = datetime.now(UTC)
    with svc.sessionmaker() as s, s.begin():
        s.add(
            SubscriptionRow(
                channel="email", address=address, kinds=["flood"], lang="ja",
                token_hash=address.encode().hex()[:64], consent_at=now, confirmed_at=now,
                created_at=now, **where,
            )
        )  # fmt: skip


def test_flood_stages_and_a_button_press_over_mqtt(
    service: CloudService,
    mosquitto: Mosquitto,
    smtp_server: SmtpSink,
    http_sink: HttpSink,
    unique: str,
) -> None:
    gw, flood, unit = f"gw-{unique}", f"fl-{unique}", f"cu-{unique}"
    subscribe(service, "inside@example.jp", area="八橋本町")
    subscribe(service, "radius@example.jp", lat=39.7200, lon=140.1000, radius_m=1500.0)
    subscribe(service, "outside@example.jp", area="雄和妙法")
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{unique}")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        meta = GatewayMeta(
            gateway_id=gw,
            ts=datetime.now(UTC),
            devices=[
                DeviceInfo(device_id=flood, kind="flood_sensor", site="八橋アンダーパス",  # type: ignore[arg-type]
                           area="八橋本町", lat=39.7230, lon=140.0960),
                DeviceInfo(device_id=unit, kind="call_unit", area="八橋本町",  # type: ignore[arg-type]
                           lat=39.7240, lon=140.0970),
            ],
        )  # fmt: skip
        service.registry.provision(gw, list(meta.devices))  # staff: akita cloud device add
        pub.publish(topics.meta(gw), encode_model(meta), qos=1, retain=True).wait_for_publish()
        wait_for("devices registered", lambda: unit in service.registry.devices(), timeout=30.0)
        # rising water through 注意/警戒/危険, then a level dithering around 30 cm and
        # falling back to 警戒 and rising again: a storm's worth of readings
        depths = [0.0, 4.0, 12.0, 15.0, 22.0, 25.0, 33.0, 29.5, 30.5, 29.5, 30.5,
                  24.0, 31.0, 24.0, 31.0, 24.0, 31.0]  # fmt: skip
        start = datetime.now(UTC) - timedelta(minutes=len(depths) + 2)
        for seq, depth in enumerate(depths):
            batch = Batch(
                gateway_id=gw, seq=seq, sent_at=start + timedelta(minutes=seq),
                readings=[FloodSensorReading(device_id=flood,
                                             ts=start + timedelta(minutes=seq),
                                             values={"depth": depth})],  # type: ignore[arg-type]
            )  # fmt: skip
            pub.publish(topics.telemetry(gw), encode_batch(batch), qos=1).wait_for_publish()
        press = Batch(
            gateway_id=gw, seq=len(depths), sent_at=datetime.now(UTC),
            readings=[CallUnitReading(device_id=unit, ts=datetime.now(UTC),
                                      values={"event": "button", "temperature": 24.0,  # type: ignore[arg-type]
                                              "humidity": 50.0})],
        )  # fmt: skip
        pub.publish(topics.telemetry(gw), encode_batch(press), qos=1).wait_for_publish()
    finally:
        pub.loop_stop()
        pub.disconnect()

    # batches are handled in order: once the press has reached staff, the flood is done
    wait_for("staff SMS for the button press", lambda: len(http_sink.snapshot()) >= 1, timeout=30.0)
    notifier = service.notifier
    assert notifier is not None and notifier.flush(30)

    [sms] = http_sink.snapshot()
    assert sms.form()["To"] == ONCALL_PHONE and "緊急通報" in sms.form()["Body"]
    [staff_mail] = smtp_server.to("care.oncall@city.akita.example")
    assert "緊急通報" in staff_mail.message["Subject"]

    for address in ("inside@example.jp", "radius@example.jp"):
        subjects = [m.message["Subject"] for m in smtp_server.to(address)]
        assert subjects == [
            "【秋田市 冠水注意】八橋本町",
            "【秋田市 冠水警戒】八橋本町（段階変更）",
            "【秋田市 冠水危険】八橋本町（段階変更）",
        ]
    body = smtp_server.to("inside@example.jp")[-1].message.get_body(("plain",)).get_content()
    assert "八橋アンダーパス" in body and "避難場所" in body
    assert smtp_server.to("outside@example.jp") == []
