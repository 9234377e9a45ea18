"""`akita cloud user add|passwd|disable|list` on a real settings file and database; the
account then signs in to the console (or does not)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cloud.api.app import create_app
from cloud.cli import app as cloud_app
from cloud.service import CloudService
from cloud.settings import CloudSettings
from tests.cloud.console.conftest import sign_in


def test_user_add_passwd_disable(tmp_path: Path) -> None:
    config = tmp_path / "cloud.toml"
    config.write_text(
        'environment = "test"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "akita.db"}"\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "telemetry.db"}"\n'
    )
    runner = CliRunner()

    def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
        r = runner.invoke(cloud_app, ["user", *args, "-c", str(config)], input=stdin)
        return r.exit_code, r.output

    code, out = cli(
        "add", "sato", "--role", "operator", "--password-stdin", stdin="first password 123\n"
    )
    assert code == 0, out
    code, out = cli("add", "sato", "--role", "operator", "--password-stdin", stdin="x" * 20 + "\n")
    assert code == 2 and "a user named 'sato' already exists" in out
    code, out = cli("add", "kato", "--role", "boss", "--password-stdin", stdin="x" * 20 + "\n")
    assert code == 2 and "role 'boss' is not one of viewer, operator, admin" in out
    code, out = cli("add", "kato", "--password-stdin", stdin="short\n")
    assert code == 2 and "password must be 12 to 1024 characters (it has 5)" in out
    assert "first password" not in out
    code, out = cli("list")
    assert code == 0 and "sato\toperator\tactive" in out

    service = CloudService(CloudSettings.load(config))
    try:
        client = TestClient(create_app(service))
        assert sign_in(client, "sato", "first password 123").status_code == 303
        assert cli("passwd", "sato", "--password-stdin", stdin="second password 456\n")[0] == 0
        # the old session ended with the password change; the old password is refused
        assert client.get("/console/", follow_redirects=False).status_code == 303
        assert sign_in(client, "sato", "first password 123").status_code == 401
        assert sign_in(client, "sato", "second password 456").status_code == 303
        assert cli("disable", "sato")[0] == 0
        assert client.get("/console/", follow_redirects=False).status_code == 303
        assert sign_in(client, "sato", "second password 456").status_code == 401
        assert cli("disable", "sato", "--enable")[0] == 0
        assert sign_in(client, "sato", "second password 456").status_code == 303
    finally:
        service.stop()
