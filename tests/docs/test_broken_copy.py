"""The docs test fails on a deliberately broken example (in a temporary copy of the docs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.docs.examples import ROOT, doc_files


def _break(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"{path}: {old!r} is no longer there to break"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_broken_example_in_a_copy_makes_the_docs_test_fail(tmp_path: Path) -> None:
    for f in doc_files(ROOT):
        copy = tmp_path / f.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, copy)
    # three kinds of breakage: a bad value in a config, a misspelt option, a real secret
    _break(tmp_path / "edge/drivers/modbus/README.md", 'type = "float32"', 'type = "float"')
    _break(tmp_path / "README.md", "akita edge check --config", "akita edge check --conifg")
    _break(tmp_path / "docs/alerts.md", 'secret = "..."', 'secret = "s3cr3t-hunter2-hunter2"')
    pytest_args = ["-q", "-p", "no:cacheprovider", "--no-header"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args, str(ROOT / "tests/docs/test_examples.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "AKITA_DOCS_ROOT": str(tmp_path)},
        timeout=240,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "edge/drivers/modbus/README.md:17: edge-register example is refused" in out, out
    assert "akita edge check --conifg" in out and "No such option" in out, out
    assert "webhook.secret = 's3cr3t-hunter2-hunter2' looks like a real secret" in out, out
    # and nothing else: the copy is otherwise the real docs, which pass
    assert out.count("FAILED ") == 3, out
