"""Each channel against a real peer: aiosmtpd (STARTTLS + AUTH) and an HTTP sink."""

from __future__ import annotations

import base64

import pytest

from cloud.notify.email import EmailChannel
from cloud.notify.errors import NotifyConfigError, NotifyError
from cloud.notify.sms import SmsChannel, SmsSettings, create_provider
from cloud.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, verify
from tests.cloud.notify.conftest import HttpSink, SmtpSink


def test_email_goes_through_starttls_and_auth(smtp_server: SmtpSink) -> None:
    EmailChannel(smtp_server.settings()).send(
        "resident@example.jp", "【秋田市】テスト", "本文です。\n", html="<p>本文です。</p>"
    )
    [got] = smtp_server.to("resident@example.jp")
    assert got.tls and got.authenticated
    assert got.message["Subject"] == "【秋田市】テスト"
    assert got.message.get_body(("plain",)).get_content().strip() == "本文です。"
    assert got.message.get_body(("html",)).get_content().strip() == "<p>本文です。</p>"


def test_email_wrong_password_is_a_permanent_error(smtp_server: SmtpSink) -> None:
    channel = EmailChannel(smtp_server.settings(password="wrong"))
    with pytest.raises(NotifyError) as info:
        channel.send("a@example.jp", "s", "t")
    assert not info.value.retryable
    assert "wrong" not in str(info.value)
    assert smtp_server.messages == []


def test_email_server_down_is_retryable() -> None:
    from cloud.notify.email import SmtpSettings
    from tests.servers import free_port

    channel = EmailChannel(SmtpSettings(host="127.0.0.1", port=free_port(), timeout_s=2))
    with pytest.raises(NotifyError) as info:
        channel.send("a@example.jp", "s", "t")
    assert info.value.retryable


def test_twilio_shape(http_sink: HttpSink) -> None:
    settings = SmsSettings(
        provider="twilio",
        url=http_sink.url,
        sender="+15005550006",
        username="AC0123456789abcdef",
        password="auth-token",
    )
    SmsChannel(create_provider(settings)).send("+819012345678", "秋田市 冠水警戒")
    [req] = http_sink.snapshot()
    assert req.path == "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.form() == {"To": "+819012345678", "From": "+15005550006", "Body": "秋田市 冠水警戒"}
    expected = base64.b64encode(b"AC0123456789abcdef:auth-token").decode()
    assert req.headers["Authorization"] == f"Basic {expected}"


def test_twilio_needs_credentials() -> None:
    with pytest.raises(NotifyConfigError, match="account SID"):
        create_provider(SmsSettings(provider="twilio", sender="+1"))


def test_json_webhook_sms_and_gateway_errors(http_sink: HttpSink) -> None:
    sms = SmsChannel(
        create_provider(
            SmsSettings(provider="webhook", url=http_sink.url + "/sms", sender="AKITA",
                        password="gw-token")
        )
    )  # fmt: skip
    sms.send("+819000000001", "x" * 400)
    [req] = http_sink.snapshot()
    assert req.path == "/sms"
    assert req.headers["Authorization"] == "Bearer gw-token"
    body = req.json()
    assert body["to"] == "+819000000001" and body["from"] == "AKITA"
    assert len(body["body"]) <= 335  # truncated to a few concatenated segments
    http_sink.statuses = [503, 400]
    with pytest.raises(NotifyError) as first:
        sms.send("+819000000001", "retry me")
    assert first.value.retryable
    with pytest.raises(NotifyError) as second:
        sms.send("+819000000001", "bad request")
    assert not second.value.retryable


def test_webhook_is_signed(http_sink: HttpSink) -> None:
    WebhookChannel(secret="s3cret").send(http_sink.url + "/hook", {"alert": "a1", "text": "冠水"})
    [req] = http_sink.snapshot()
    assert req.json() == {"alert": "a1", "text": "冠水"}
    assert verify("s3cret", req.headers[TIMESTAMP_HEADER], req.body, req.headers[SIGNATURE_HEADER])
    assert not verify("other", req.headers[TIMESTAMP_HEADER], req.body,
                      req.headers[SIGNATURE_HEADER])  # fmt: skip
