"""Real servers for the tests: Mosquitto, InfluxDB 1.x and PostgreSQL, each on a free
port in its own temporary directory. When ``CI`` is set, a missing binary fails the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_binary(name: str, package: str) -> str:
    """Path of a server binary; a missing one fails under CI and skips locally."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if path:
        return path
    msg = f"{name} not found: install the Debian package '{package}' (scripts/test.sh does)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)
    raise AssertionError("unreachable")


def wait_port(
    port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before opening port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout}s")


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Mosquitto:
    """A running mosquitto. ``stop()``/``start()`` simulate a broker outage on the same port."""

    binary: str
    directory: Path
    port: int
    extra_conf: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / "mosquitto.log"

    @property
    def conf_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    def write_conf(self) -> None:
        # persistence on, so QoS 1 sessions survive a broker restart (as in production);
        # queue limits high enough that a subscriber falling behind loses nothing.
        self.conf_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.directory}/\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 100\n"
            "log_dest stdout\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            # as root, mosquitto drops to its own user, which cannot write the persistence
            # file into the test's private temp dir: sessions would silently not survive
            + ("user root\n" if os.geteuid() == 0 else "")
            + self.extra_conf
        )

    def start(self) -> None:
        self.write_conf()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf_path)], stdout=out, stderr=subprocess.STDOUT
            )
        wait_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


@dataclass
class Influx:
    """A running influxd 1.x with its HTTP API on ``url``."""

    binary: str
    directory: Path
    port: int
    rpc_port: int
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # e.g. the deploy GOGC/GOMEMLIMIT

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.directory / "influxdb.conf"
        d = self.directory
        conf.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n'
            '  query-log-enabled = false\n  cache-snapshot-write-cold-duration = "10s"\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "  max-body-size = 0\n"
            "[monitor]\n  store-enabled = false\n"
            '[continuous_queries]\n  run-interval = "1s"\n'
            "[subscriber]\n  enabled = false\n"
        )
        with (d / "influxd.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-config", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        wait_port(self.port, timeout=30, proc=self.proc)
        self._wait_ping()

    def _wait_ping(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(f"{self.url}/ping", timeout=1) as r,
            ):
                if r.status == 204:
                    return
            time.sleep(0.1)
        raise TimeoutError("influxd did not answer /ping")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def query(self, q: str, db: str | None = None) -> dict:  # type: ignore[type-arg]
        import json
        import urllib.parse

        params = {"q": q, "epoch": "ms"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]


@contextlib.contextmanager
def running_mosquitto(directory: Path, extra_conf: str = "") -> Iterator[Mosquitto]:
    binary = require_binary("mosquitto", "mosquitto")
    m = Mosquitto(binary=binary, directory=directory, port=free_port(), extra_conf=extra_conf)
    m.start()
    try:
        yield m
    finally:
        m.stop()


@contextlib.contextmanager
def running_influx(directory: Path) -> Iterator[Influx]:
    binary = require_binary("influxd", "influxdb")
    i = Influx(binary=binary, directory=directory, port=free_port(), rpc_port=free_port())
    i.start()
    try:
        yield i
    finally:
        i.stop()


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway PKI: the CA, a server certificate, and a client certificate if asked."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path | None = None
    client_key: Path | None = None


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _signed_cert(d: Path, name: str, cn: str, ext: str) -> tuple[Path, Path]:
    """A key and a certificate signed by ``d/ca.crt``, as ``name.key`` / ``name.crt``."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
    (d / f"{name}.ext").write_text(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
             cwd=d)  # fmt: skip
    return d / f"{name}.crt", d / f"{name}.key"


def make_tls_files(directory: Path, *, client_cn: str | None = None) -> TlsFiles:
    """Make a test CA and a server certificate for localhost / 127.0.0.1 in ``directory``
    (``ca.crt``, ``server.crt``, ``server.key``, the names deploy/mosquitto expects), plus a
    client certificate ``client.crt`` / ``client.key`` with CN ``client_cn`` if given.
    """
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=akita-test-ca", "-keyout", "ca.key", "-out", "ca.crt",
             cwd=directory)  # fmt: skip
    server_cert, server_key = _signed_cert(
        directory, "server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
    )
    files = TlsFiles(ca=directory / "ca.crt", server_cert=server_cert, server_key=server_key)
    if client_cn is None:
        return files
    client_cert, client_key = _signed_cert(directory, "client", client_cn, "")
    return TlsFiles(files.ca, server_cert, server_key, client_cert, client_key)


DEPLOY_MOSQUITTO = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"


def dynsec_plugin() -> str:
    """Path of Mosquitto's dynamic-security plugin (Debian: /usr/lib/<triplet>/)."""
    import glob

    found = sorted(glob.glob("/usr/lib/*/mosquitto_dynamic_security.so"))
    found += glob.glob("/usr/lib/mosquitto_dynamic_security.so")
    if found:
        return found[0]
    msg = "mosquitto_dynamic_security.so not found: install the Debian package 'mosquitto'"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)
    raise AssertionError("unreachable")


@dataclass
class DeployedMosquitto:
    """Mosquitto run from deploy/mosquitto's own files: its mosquitto.conf (TLS listener,
    loopback listener, dynamic security), roles and scripts. Only paths and ports change.
    """

    directory: Path
    tls_port: int
    plain_port: int
    ca: Path
    proc: subprocess.Popen[bytes] | None = None
    passwords: dict[str, str] = field(default_factory=dict)

    def script(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a shipped script as the broker admin; the caller checks the result."""
        env = {**os.environ, "AKITA_BROKER_ADMIN": str(self.directory / "admin.conf")}
        return subprocess.run(
            ["sh", str(DEPLOY_MOSQUITTO / name), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    def credential(self, name: str) -> str:
        """Make a gateway (any id) or service (akita-*) account; return its password."""
        script = (
            "make-service-credential.sh"
            if name.startswith("akita-")
            else ("make-gateway-credential.sh")
        )
        result = self.script(script, name)
        if result.returncode != 0:
            raise AssertionError(f"{script} {name}: {result.stderr}")
        for line in result.stdout.splitlines():
            if line.startswith("password: "):
                self.passwords[name] = line.split(" ", 1)[1]
                return self.passwords[name]
        raise AssertionError(f"{script} {name} printed no password: {result.stdout}")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


@contextlib.contextmanager
def running_deployed_mosquitto(directory: Path) -> Iterator[DeployedMosquitto]:
    """Start Mosquitto with the shipped config, a throwaway CA, init-broker.sh and
    make-roles.sh; add accounts with ``.credential(name)``."""
    binary = require_binary("mosquitto", "mosquitto")
    plugin = dynsec_plugin()
    etc, data = directory / "etc", directory / "data"
    etc.mkdir()
    data.mkdir()
    tls = make_tls_files(etc)
    tls_port, plain_port = free_port(), free_port()
    subprocess.run(
        ["sh", str(DEPLOY_MOSQUITTO / "init-broker.sh"), str(etc), str(plain_port)],
        check=True,
        capture_output=True,
    )
    conf = (DEPLOY_MOSQUITTO / "mosquitto.conf").read_text()
    replacements = {
        "/etc/mosquitto/akita/": f"{etc}/",
        "/var/lib/mosquitto/": f"{data}/",
        "listener 8883\n": f"listener {tls_port} 127.0.0.1\n",
        "listener 1883 127.0.0.1\n": f"listener {plain_port} 127.0.0.1\n",
        "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so": plugin,
    }
    for old, new in replacements.items():
        assert old in conf, f"deploy/mosquitto/mosquitto.conf no longer has {old!r}"
        conf = conf.replace(old, new)
    if os.geteuid() == 0:
        conf += "user root\n"  # else it drops to 'mosquitto', who cannot enter the temp dir
    (etc / "mosquitto.conf").write_text(conf)
    broker = DeployedMosquitto(etc, tls_port, plain_port, tls.ca)
    with (directory / "mosquitto.log").open("wb") as log:
        broker.proc = subprocess.Popen(
            [binary, "-c", str(etc / "mosquitto.conf")], stdout=log, stderr=log
        )
    try:
        wait_port(tls_port, proc=broker.proc)
        wait_port(plain_port, proc=broker.proc)
        roles = broker.script("make-roles.sh")
        if roles.returncode != 0:
            raise AssertionError(f"make-roles.sh: {roles.stderr}")
        yield broker
    finally:
        broker.stop()


def postgres_bindir() -> Path:
    """Debian keeps PostgreSQL's server binaries under /usr/lib/postgresql/<ver>/bin;
    a missing one fails under CI and skips locally."""
    import glob

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    msg = "initdb not found: install the Debian package 'postgresql' (scripts/test.sh does)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)
    raise AssertionError("unreachable")


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parents[1].name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


@dataclass
class Postgres:
    """A running PostgreSQL cluster of its own (initdb + pg_ctl), trust auth on 127.0.0.1.

    As root the server runs as the ``postgres`` user (initdb refuses root), so its
    directory is made outside pytest's 0700 temp tree and handed to that user.
    """

    bindir: Path
    directory: Path
    port: int
    user: str = "akita"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)

    def start(self) -> None:
        data = self.directory / "data"
        self._run("initdb", "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(data), "-l", str(self.directory / "postgres.log"),
                  "-o", options, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its SQLAlchemy URL."""
        self._sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _sql(self, statement: str) -> None:
        import psycopg

        conninfo = f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    import tempfile

    bindir = postgres_bindir()
    directory = Path(tempfile.mkdtemp(prefix="akita-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    pg = Postgres(bindir=bindir, directory=directory, port=free_port())
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(directory, ignore_errors=True)
