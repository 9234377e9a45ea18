"""deploy/systemd/akita-cloud.service: a dedicated user, a private umask and the
sandboxing directives; ``systemd-analyze verify`` finds nothing wrong with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.servers import require_binary
from tests.systemd_units import unit_section

UNIT = Path(__file__).resolve().parents[3] / "deploy" / "systemd" / "akita-cloud.service"


def _service_section() -> dict[str, list[str]]:
    return unit_section(UNIT, "Service")


def test_the_unit_runs_unprivileged_and_private() -> None:
    s = _service_section()
    assert s["User"] == ["akita"] and s["Group"] == ["akita"]
    assert s["UMask"] == ["0077"]
    assert s["NoNewPrivileges"] == ["yes"] and s["ProtectSystem"] == ["strict"]
    assert s["PrivateTmp"] == ["yes"] and s["ProtectHome"] == ["yes"]
    assert s["ReadWritePaths"] == ["/var/lib/akita"]
    assert s["StateDirectoryMode"] == ["0700"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["ExecStart"] == ["/opt/akita/venv/bin/akita cloud run --config /etc/akita/cloud.toml"]


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # fails under CI when missing (scripts/test.sh installs Debian's systemd), skips locally
    analyze = require_binary("systemd-analyze", "systemd")
    # the unit names the installed path; point it at this checkout's akita to verify
    akita = Path(sys.executable).with_name("akita")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/akita/venv/bin/akita", str(akita))
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")
    r = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (r.stdout + r.stderr).splitlines()
        # outside a booted systemd (containers, CI) verify reports its own environment
        if UNIT.name in line or "akita-cloud" in line
    ]
    assert r.returncode == 0 and problems == [], r.stdout + r.stderr
