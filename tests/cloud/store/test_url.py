"""open_store(url): what is accepted and how a bad URL is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.errors import SettingsError
from cloud.store import open_store
from cloud.store.influx import InfluxStore
from cloud.store.sqlite import SqliteStore


def test_sqlite_urls(tmp_path: Path) -> None:
    s = open_store(f"sqlite:///{tmp_path}/a/b.db")
    assert isinstance(s, SqliteStore) and s.path == f"{tmp_path}/a/b.db"
    assert (tmp_path / "a" / "b.db").exists()
    s.close()
    mem = open_store("sqlite:///:memory:")
    assert mem.ping()
    mem.close()


def test_influx_url_parts() -> None:
    s = open_store("influx+https://u:p@influx.example:8443/city?timeout=3&retries=0&verify=false")
    assert isinstance(s, InfluxStore)
    assert (s.base_url, s.database, s.retries) == ("https://influx.example:8443", "city", 0)
    s.close()


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("akita.db", "no scheme"),
        ("postgres://x/y", "'postgres'"),
        ("sqlite://relative.db", "sqlite:///"),
        ("sqlite:///", "no file path"),
        ("influx+http://:8086/akita", "no host"),
        ("influx+http://h:port/akita", "port"),
        ("influx+http://h:8086/", "database name"),
        ("influx+http://h:8086/a/b", "database name"),
        ("influx+http://h:8086/akita?tokn=x", "tokn"),
        ("influx+http://h:8086/akita?timeout=soon", "timeout='soon'"),
        ("influx+http://h:8086/akita?retries=many", "retries='many'"),
    ],
)
def test_bad_urls_name_the_bad_part(url: str, named: str) -> None:
    with pytest.raises(SettingsError) as err:
        open_store(url)
    assert named in str(err.value)


def test_directory_is_not_a_sqlite_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="is a directory"):
        open_store(f"sqlite:///{tmp_path}")


def test_sample_config_is_a_valid_cloud_settings_file() -> None:
    from cloud.settings import CloudSettings

    sample = Path(__file__).resolve().parents[3] / "cloud/store/influx/sample.toml"
    settings = CloudSettings.load(sample, env={})
    store = open_store(settings.store.url)
    assert isinstance(store, InfluxStore) and store.database == "akita"
    store.close()
