"""The uplink over TLS against a real Mosquitto: CA file, password file, client certificate.

Certificates are made with the openssl CLI for each run; Mosquitto gets a TLS
listener that requires a client certificate and a TLS listener checking passwords.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import parse_config
from edge.uplink import Uplink
from schemas import topics
from tests.servers import free_port, make_tls_files, running_mosquitto


def connect_and_publish(cfg_mqtt: dict[str, Any], gateway: str, wait: float = 5.0) -> bool:
    """Start an uplink, wait for the birth message to be published, report if it connected."""
    cfg = parse_config({"gateway": {"id": gateway}, "mqtt": cfg_mqtt})

    async def go() -> bool:
        up = asyncio.Event()
        uplink = Uplink(cfg, on_ack=lambda mid: None, on_state=lambda s: up.set() if s else None)
        uplink.start()
        try:
            async with asyncio.timeout(wait):
                await up.wait()
        except TimeoutError:
            pass
        ok = uplink.connected
        await uplink.stop()
        return ok

    return asyncio.run(go())


def test_tls_with_ca_file_password_file_and_client_certificate(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    files = make_tls_files(pki, client_cn="gw-tls")
    assert files.client_cert is not None and files.client_key is not None
    (tmp_path / "mosq").mkdir()
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "gw-tls", "s3cret"], check=True)
    cert_port, pw_port = free_port(), free_port()
    # security settings are global in this config (the fixture allows anonymous clients):
    # a username with a wrong password is still refused
    extra = (
        f"password_file {passwd}\n"
        f"listener {cert_port} 127.0.0.1\n"
        f"cafile {files.ca}\ncertfile {files.server_cert}\nkeyfile {files.server_key}\n"
        "require_certificate true\n"
        f"listener {pw_port} 127.0.0.1\n"
        f"cafile {files.ca}\ncertfile {files.server_cert}\nkeyfile {files.server_key}\n"
    )
    secret = tmp_path / "mqtt.secret"
    secret.write_text("s3cret\n")
    with running_mosquitto(tmp_path / "mosq", extra_conf=extra) as m:
        births: list[str] = []
        got = threading.Event()
        sub = mqtt.Client(CallbackAPIVersion.VERSION2)

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            births.append(msg.topic)
            got.set()

        sub.on_message = on_message
        sub.connect("127.0.0.1", m.port)
        sub.subscribe(topics.status("gw-tls"), qos=1)
        sub.loop_start()
        tls = {"host": "127.0.0.1", "tls": True, "ca_file": str(files.ca)}
        try:
            assert connect_and_publish(
                {
                    **tls,
                    "port": cert_port,
                    "cert_file": str(files.client_cert),
                    "key_file": str(files.client_key),
                },
                "gw-tls",
            )
            assert got.wait(5) and births[0] == topics.status("gw-tls")
            assert connect_and_publish(
                {**tls, "port": pw_port, "username": "gw-tls", "password_file": str(secret)},
                "gw-tls",
            )
            # a wrong password and a missing client certificate are refused
            assert not connect_and_publish(
                {**tls, "port": pw_port, "username": "gw-tls", "password": "wrong"}, "gw-tls", 2
            )
            assert not connect_and_publish({**tls, "port": cert_port}, "gw-tls", 2)
        finally:
            sub.loop_stop()
            sub.disconnect()
