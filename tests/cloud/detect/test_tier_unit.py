"""deploy/systemd/akita-detect.service: `akita cloud detect` as its own unit, with the
same dedicated user, private umask and sandboxing as akita-cloud.service; and the
command's --help teaches what it does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cloud.cli import app
from tests.servers import require_binary
from tests.systemd_units import unit_section

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "systemd"
UNIT = DEPLOY / "akita-detect.service"


def _service(unit: Path) -> dict[str, list[str]]:
    return unit_section(unit, "Service")


def test_the_detect_unit_runs_the_tier_as_sandboxed_as_the_cloud_unit() -> None:
    detect, cloud = _service(UNIT), _service(DEPLOY / "akita-cloud.service")
    assert detect["ExecStart"] == [
        "/opt/akita/venv/bin/akita cloud detect --config /etc/akita/cloud.toml --name detect-%H"
    ]
    for key in ("User", "Group", "UMask", "NoNewPrivileges", "ProtectSystem", "PrivateTmp",
                "ReadWritePaths", "CapabilityBoundingSet", "SystemCallFilter",
                "RestartPreventExitStatus"):  # fmt: skip
        assert detect[key] == cloud[key], key


def test_systemd_analyze_verify_the_detect_unit(tmp_path: Path) -> None:
    # fails under CI when missing (scripts/test.sh installs Debian's systemd), skips locally
    analyze = require_binary("systemd-analyze", "systemd")
    akita = Path(sys.executable).with_name("akita")
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/opt/akita/venv/bin/akita", str(akita)))
    r = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in (r.stdout + r.stderr).splitlines() if "akita-detect" in line]
    assert r.returncode == 0 and problems == [], r.stdout + r.stderr


def test_detect_help_and_a_bad_setting_named() -> None:
    result = CliRunner().invoke(app, ["detect", "--help"])
    assert result.exit_code == 0 and "rendezvous" in result.output
    bad = CliRunner().invoke(app, ["detect"], env={"AKITA_DETECT_CHECKPOINT_S": "600"})
    assert bad.exit_code == 2
    assert "checkpoint_s" in bad.output and "600" in bad.output
