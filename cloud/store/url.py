"""Store URLs: ``sqlite:///path.db`` and ``influx+http(s)://[user:pass@]host:port/db``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cloud.errors import SettingsError
from cloud.store.base import TimeSeriesStore

_INFLUX_OPTIONS = {"token", "rp", "timeout", "retries", "verify"}


def open_store(url: str) -> TimeSeriesStore:
    """A store from its URL.

    - ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``
    - ``influx+http://host:8086/akita`` (database ``akita``), ``influx+https://...``;
      ``user:password@`` for basic auth; query options ``token``, ``rp``, ``timeout``
      (seconds), ``retries``, ``verify`` (``false`` or a CA bundle path).

    Raises :class:`~cloud.errors.SettingsError` naming the bad part of the URL.
    """
    if not isinstance(url, str) or "://" not in url:
        raise SettingsError(f"store url {url!r} has no scheme (sqlite:/// or influx+http://)")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        return _open_sqlite(url)
    if scheme in ("influx+http", "influx+https", "influx"):
        return _open_influx(url)
    raise SettingsError(
        f"store url scheme {scheme!r} is not supported: use sqlite:///path.db or "
        "influx+http://host:8086/database"
    )


def _open_sqlite(url: str) -> TimeSeriesStore:
    from cloud.store.sqlite import SqliteStore

    if not url.startswith("sqlite:///"):
        raise SettingsError(
            f"sqlite store url {url!r} must start with sqlite:/// (then the file path)"
        )
    path = unquote(url[len("sqlite:///") :].split("?", 1)[0])
    if not path:
        raise SettingsError(f"sqlite store url {url!r} has no file path after sqlite:///")
    if path != ":memory:" and Path(path).is_dir():
        raise SettingsError(f"sqlite store path {path!r} is a directory, not a file")
    return SqliteStore(path)


def _open_influx(url: str) -> TimeSeriesStore:
    from cloud.store.influx import InfluxStore

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    http = "https" if scheme == "influx+https" else "http"
    try:
        port = parts.port
    except ValueError as exc:
        raise SettingsError(f"influx store url port is not a number: {exc}") from exc
    if not parts.hostname:
        raise SettingsError("influx store url has no host (influx+http://HOST:8086/akita)")
    database = unquote(parts.path.strip("/"))
    if not database or "/" in database:
        raise SettingsError(
            f"influx store url path {parts.path!r} must be the database name, e.g. /akita"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - _INFLUX_OPTIONS
    if unknown:
        raise SettingsError(
            f"influx store url option(s) {sorted(unknown)} unknown; allowed: "
            f"{sorted(_INFLUX_OPTIONS)}"
        )

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    try:
        timeout = float(one("timeout") or 10.0)
    except ValueError as exc:
        raise SettingsError(f"influx store url timeout={one('timeout')!r} is not seconds") from exc
    try:
        retries = int(one("retries") or 1)
    except ValueError as exc:
        raise SettingsError(f"influx store url retries={one('retries')!r} is not an int") from exc
    verify_text = one("verify")
    verify: bool | str = True
    if verify_text is not None:
        verify = False if verify_text.lower() in ("0", "false", "no") else verify_text
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    base = f"{http}://{host}" + (f":{port}" if port else "")
    return InfluxStore(
        base,
        database,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        token=one("token") or None,
        rp=one("rp") or None,
        timeout=timeout,
        retries=retries,
        verify=verify,
    )


def init_db(url: str, *, raw_duration: str = "90d", agg_duration: str = "3650d") -> list[str]:
    """Prepare the store behind ``url``: for InfluxDB the database, retention policies and
    continuous queries (contract I); for SQLite the tables. Idempotent. Returns what it did.
    """
    store = open_store(url)
    try:
        init = getattr(store, "init_db", None)
        if init is None:
            return []  # SQLite creates its tables on open
        return list(init(raw_duration=raw_duration, agg_duration=agg_duration))
    finally:
        store.close()
