"""Cloud settings (TOML + AKITA_* env) and the ``akita cloud`` commands."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud.cli import app
from cloud.errors import SettingsError
from cloud.settings import CloudSettings
from tests.servers import Influx

TOML = """
environment = "production"
[ingest]
broker_host = "mqtt.akita.example"
broker_port = 8883
tls = true
username = "ingest"
password = "Zq8-long-real-secret"
[store]
url = "influx+http://influx:8086/akita"
[database]
url = "postgresql+psycopg://akita@db/akita"
[api]
port = 8080
public_url = "https://bousai.city.akita.example"
[alerts]
hold_off_s = 120
[alerts.hold_off_by_kind]
button_press = 0
[detect.flood]
"""


def test_toml_and_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "cloud.toml"
    path.write_text(TOML, encoding="utf-8")
    env = {
        "AKITA_API__PORT": "9001",
        "AKITA_ALERTS__MIN_OPEN_S": "5",
        "HOME": "/root",
        "AKITA_INGEST_BROKER_PORT": "1",  # a standalone worker's variable: not ours
        "AKITA_CONFIG": str(path),
    }
    s = CloudSettings.load(path, env=env)
    assert s.environment == "production" and s.ingest.broker_port == 8883
    assert s.api.port == 9001 and s.api.host == "127.0.0.1"
    assert s.alerts.hold_off("button_press") == 0 and s.alerts.hold_off("leak") == 120
    assert s.alerts.min_open_s == 5
    assert s.database.url.startswith("postgresql")
    defaults = CloudSettings.load(None, env={})
    assert defaults.store.url == "sqlite:///./.akita/telemetry.db"
    assert defaults.database.url == "sqlite:///./.akita/akita.db"
    assert defaults.api.host == "127.0.0.1" and defaults.notify is None


@pytest.mark.parametrize(
    ("toml", "env", "names"),
    [
        ("[api]\nport = 'abc'\n", {}, "api.port"),
        ("[api]\nport = 70000\n", {}, "api.port"),
        ("", {"AKITA_API__PORT": "eighty"}, "api.port"),
        ("[api]\nprot = 1\n", {}, "api.prot"),
        ("[alerts]\nhold_off_s = -1\n", {}, "alerts.hold_off_s"),
        ("[ingest]\nbroker_port = 0\n", {}, "ingest.broker_port"),
        ("environment = 'staging'\n", {}, "environment"),
    ],
)
def test_bad_settings_name_the_setting(
    tmp_path: Path, toml: str, env: dict[str, str], names: str
) -> None:
    path = tmp_path / "cloud.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(SettingsError, match=r"setting " + re.escape(names) + r"\b"):
        CloudSettings.load(path, env=env)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        CloudSettings.load(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[api\nport=1", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        CloudSettings.load(bad, env={})


@pytest.mark.parametrize(
    ("section", "secret"),
    [
        ("ingest.password", "changeme"),
        ("smtp.password", ""),
        ("webhook.secret", "<set me>"),
        ("sms.password", "secret"),
        ("notify.recipient_salt", "akita"),
    ],
)
def test_placeholder_secrets_refused_outside_development(section: str, secret: str) -> None:
    name, key = section.split(".")
    extra = {"smtp": {"host": "mail"}, "sms": {"provider": "webhook"}}.get(name, {})
    data = {"environment": "production", name: {**extra, key: secret}}
    with pytest.raises(SettingsError, match=rf"setting {name}\.{key} holds a placeholder"):
        CloudSettings.from_mapping(data)
    # accepted while developing
    CloudSettings.from_mapping({**data, "environment": "development"})


def test_for_demo() -> None:
    s = CloudSettings.for_demo(
        mqtt_host="127.0.0.1",
        mqtt_port=18830,
        store_url="sqlite:///x/ts.db",
        database_url="sqlite:///x/a.db",
        api_port=8123,
    )
    assert (s.ingest.broker_port, s.api.port, s.store.url) == (18830, 8123, "sqlite:///x/ts.db")


def test_cli_token_create_prints_secret_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "akita.db"
    env = {"AKITA_DATABASE__URL": f"sqlite:///{db}"}
    runner = CliRunner()
    r = runner.invoke(app, ["token", "create", "--name", "ops-sato", "--role", "operator"], env=env)
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[0]
    assert secret.startswith("akt_") and len(secret) > 40
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, role, token_hash FROM api_tokens").fetchall()
        dump = "\n".join(conn.iterdump())
    assert rows == [("ops-sato", "operator", hashlib.sha256(secret.encode()).hexdigest())]
    assert secret not in dump
    again = runner.invoke(app, ["token", "create", "--name", "ops-sato"], env=env)
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(app, ["token", "create", "--name", "x", "--role", "boss"], env=env)
    assert bad.exit_code == 2 and "boss" in bad.output
    listed = runner.invoke(app, ["token", "list"], env=env)
    assert "ops-sato\toperator" in listed.stdout and secret not in listed.stdout


def test_cli_init_db_on_influx(tmp_path: Path, influx: Influx, influx_db: str) -> None:
    env = {
        "AKITA_STORE__URL": f"influx+http://127.0.0.1:{influx.port}/{influx_db}",
        "AKITA_DATABASE__URL": f"sqlite:///{tmp_path / 'akita.db'}",
    }
    r = CliRunner().invoke(app, ["init-db"], env=env)
    assert r.exit_code == 0, r.output
    policies = influx.query("SHOW RETENTION POLICIES", influx_db)["results"][0]["series"][0]
    names = {row[0] for row in policies["values"]}
    assert {"raw", "agg_1m"} <= names
    with sqlite3.connect(tmp_path / "akita.db") as conn:
        tables = {t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"alerts", "alert_events", "maintenance_windows", "api_tokens"} <= tables
    bad = CliRunner().invoke(app, ["init-db"], env={"AKITA_STORE__URL": "mysql://x/y"})
    assert bad.exit_code != 0 and "store url scheme" in bad.output


def test_cli_help_teaches() -> None:
    runner = CliRunner()
    for args in (
        ["--help"],
        ["run", "--help"],
        ["init-db", "--help"],
        ["token", "create", "--help"],
    ):
        r = runner.invoke(app, args)
        assert (r.exit_code == 0 and "Example" in r.output) or "First start" in r.output


def test_staff_ack_link_follows_the_public_url_unless_set() -> None:
    # the default pointed at a page that did not exist (/staff/alerts); staff mails now
    # open the console's alert page on the configured site
    base = {"api": {"public_url": "https://bousai.city.akita.example"}}
    settings = CloudSettings.from_mapping({**base, "notify": {}})
    assert settings.notify is not None
    assert settings.notify.ack_url == (
        "https://bousai.city.akita.example/console/alerts/{alert_id}"
    )
    own = "https://ops.city.akita.example/console/alerts/{alert_id}"
    settings = CloudSettings.from_mapping({**base, "notify": {"ack_url": own}})
    assert settings.notify is not None and settings.notify.ack_url == own
