"""edge never imports cloud, cloud never imports edge or the simulator, schemas imports
neither, dashboards import only schemas, and a gateway's install profile stays free of
the cloud stack. An import by name (``importlib.import_module("firmware_sim.export")``,
``__import__("edge")``) counts as an import."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "edge": {"cloud", "firmware_sim", "akita", "dashboards"},
    "cloud": {"edge", "akita", "firmware_sim"},
    "schemas": {"edge", "cloud", "firmware_sim", "akita", "dashboards"},
    "firmware_sim": {"cloud", "akita"},
    "dashboards": {"edge", "cloud", "firmware_sim", "akita"},  # schemas only
}
HEAVY = ("fastapi", "sqlalchemy", "numpy", "scipy", "uvicorn", "jinja2", "cloud")


_BY_NAME = {"import_module", "__import__", "find_spec"}


def _imported_by_name(node: ast.AST) -> str | None:
    """The literal module name of ``importlib.import_module("x.y")`` and the like."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    first = node.args[0]
    if name in _BY_NAME and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif (by_name := _imported_by_name(node)) is not None:
            found.add(by_name.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_forbidden(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = _imports(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from cloud.store import base\nimport os\n")
    assert "cloud" in _imports(probe)


def test_checker_catches_an_import_by_name(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import importlib\nfrom importlib import import_module\n"
        "m = importlib.import_module('firmware_sim.export')\n"
        "e = import_module('edge.config')\nc = __import__('akita')\n"
        "ok = importlib.import_module(name)\n"
    )
    assert _imports(probe) == {"importlib", "firmware_sim", "edge", "akita"}


def test_edge_runtime_pulls_in_no_cloud_stack() -> None:
    modules = [
        p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for p in sorted((ROOT / "edge").rglob("*.py"))
    ]
    modules = [m.removesuffix(".__init__") for m in modules]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"edge imported: {out.stdout.strip()}"


def test_edge_extra_has_no_cloud_dependencies() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    edge = " ".join(meta["project"]["optional-dependencies"]["edge"]).lower()
    for heavy in ("fastapi", "sqlalchemy", "numpy", "scipy"):
        assert heavy not in edge
