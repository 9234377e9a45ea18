"""The production check (cloud.production): placeholders and short secrets refused,
naming the setting; a settings file without ``environment`` outside the checkout runs
as production."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.errors import SettingsError
from cloud.production import CHECKOUT, MIN_SECRET_LENGTH, default_environment, is_placeholder
from cloud.settings import CloudSettings

REAL = "Vq3r8T-kZ0pXw2mN7bYc"  # 20 characters, random
BASE = {"environment": "production", "api": {"public_url": "https://bousai.city.akita.jp"}}


@pytest.mark.parametrize(
    "value",
    ["...", "<secret>", "<your SMTP password>", "CHANGE-ME", "change_me", "ChangeMe",
     "example", "xxxxxxxxxxxxxxxxxx", "${SMTP_PASSWORD}", "$SMTP_PASSWORD", "", "   ",
     "****************", "akita", "password", "your-password-here-please", "…"],
)  # fmt: skip
def test_placeholders_are_refused_naming_the_setting(value: str) -> None:
    assert is_placeholder(value)
    data = {**BASE, "smtp": {"host": "mail", "password": value}}
    with pytest.raises(SettingsError, match=r"setting smtp\.password holds a placeholder"):
        CloudSettings.from_mapping(data)


def test_short_secrets_refused_in_production_only() -> None:
    short = REAL[: MIN_SECRET_LENGTH - 1]
    data = {**BASE, "webhook": {"secret": short}}
    with pytest.raises(SettingsError, match=r"setting webhook\.secret is too short .*15 char"):
        CloudSettings.from_mapping(data)
    CloudSettings.from_mapping({**data, "environment": "test"})
    ok = CloudSettings.from_mapping({**BASE, "webhook": {"secret": REAL[:MIN_SECRET_LENGTH]}})
    assert ok.webhook is not None


@pytest.mark.parametrize(
    ("setting", "url"),
    [
        ("database.url", "postgresql+psycopg://akita:...@db/akita"),
        ("database.url", "postgresql+psycopg://akita:<password>@db/akita"),
        ("store.url", "influx+http://akita-ingest:CHANGE-ME@127.0.0.1:8086/akita"),
        ("store.url", "influx+http://akita-ingest:short@127.0.0.1:8086/akita"),
    ],
)
def test_passwords_inside_urls_are_checked(setting: str, url: str) -> None:
    section, key = setting.split(".")
    with pytest.raises(SettingsError, match=rf"setting {section}\.{key} "):
        CloudSettings.from_mapping({**BASE, section: {key: url}})
    good = url.split("://")[0] + f"://akita:{REAL}@db/akita"
    CloudSettings.from_mapping({**BASE, section: {key: good}})


def test_real_secrets_pass() -> None:
    data = {**BASE, "smtp": {"host": "mail", "password": REAL}, "webhook": {"secret": REAL}}
    assert CloudSettings.from_mapping(data).environment == "production"


def test_missing_environment_outside_the_checkout_means_production(tmp_path: Path) -> None:
    config = tmp_path / "cloud.toml"
    config.write_text('[smtp]\nhost = "mail"\npassword = "..."\n', encoding="utf-8")
    assert default_environment(config) == "production"
    with pytest.raises(SettingsError) as err:
        CloudSettings.load(config, env={})
    message = str(err.value)
    assert "smtp.password holds a placeholder" in message
    assert "sets no environment" in message and "runs as production" in message
    # said explicitly, development still relaxes the checks
    config.write_text('environment = "development"\n' + config.read_text(), encoding="utf-8")
    assert CloudSettings.load(config, env={}).environment == "development"
    # so does AKITA_ENVIRONMENT
    config.write_text('[smtp]\nhost = "mail"\npassword = "..."\n', encoding="utf-8")
    env = {"AKITA_ENVIRONMENT": "development"}
    assert CloudSettings.load(config, env=env).environment == "development"


def test_missing_environment_inside_the_checkout_means_development() -> None:
    assert CHECKOUT is not None
    sample = CHECKOUT / "cloud" / "store" / "influx" / "sample.toml"
    assert default_environment(sample) == "development"
    assert CloudSettings.load(sample, env={}).environment == "development"
