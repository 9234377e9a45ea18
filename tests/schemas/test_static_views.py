"""The type checker's static views of the registry cannot drift from the built-in kinds.

``schemas/devices.py`` and ``schemas/wire.py`` build ``DeviceKind``, ``Reading`` and the
per-kind reading models at runtime from the registry; under ``if TYPE_CHECKING:`` they
declare what mypy sees: ``DeviceKind``'s members and a ``<Kind>Reading`` class per
built-in kind (``schemas/kinds/<kind>.py``). Those declarations are read here from the
source (they never run) and compared with the built-in kind modules, so adding, renaming
or removing a built-in kind without its static view fails here.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import schemas.kinds
from schemas import devices, wire
from schemas.kinds import Kind

ROOT = Path(__file__).resolve().parents[2]


def builtin_kinds() -> dict[str, Kind]:
    """The kinds declared in schemas/kinds/ (plugins, if any are registered, excluded)."""
    found: dict[str, Kind] = {}
    for m in pkgutil.iter_modules(schemas.kinds.__path__):
        if m.name == "base":
            continue
        kind = importlib.import_module(f"schemas.kinds.{m.name}").KIND
        found[kind.name] = kind
    return found


def type_checking_classes(path: Path) -> dict[str, ast.ClassDef]:
    """The classes defined in the module's top-level ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: dict[str, ast.ClassDef] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            out.update({c.name: c for c in node.body if isinstance(c, ast.ClassDef)})
    return out


def assigned(cls: ast.ClassDef) -> dict[str, ast.Assign | ast.AnnAssign]:
    out: dict[str, ast.Assign | ast.AnnAssign] = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):
                out[target.id] = stmt
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            out[stmt.target.id] = stmt
    return out


def test_there_are_builtin_kinds() -> None:
    assert len(builtin_kinds()) >= 5


def test_static_device_kind_lists_exactly_the_builtin_kinds() -> None:
    cls = type_checking_classes(ROOT / "schemas" / "devices.py")["DeviceKind"]
    members = {}
    for name, stmt in assigned(cls).items():
        assert stmt.value is not None
        members[name] = ast.literal_eval(stmt.value)
    want = {k.upper(): k for k in builtin_kinds()}
    assert members == want
    # and the runtime enum has them (plus any registered plugin kind)
    assert {m.name: m.value for m in devices.DeviceKind if m.value in want.values()} == want


def test_static_reading_models_are_those_of_the_builtin_kinds() -> None:
    classes = type_checking_classes(ROOT / "schemas" / "wire.py")
    kinds = builtin_kinds()
    per_kind = {name: c for name, c in classes.items() if name != "Reading"}
    assert set(per_kind) == {wire.reading_model(k).__name__ for k in kinds}
    for name, kind in kinds.items():
        fields = assigned(per_kind[wire.reading_model(name).__name__])
        kind_stmt, values_stmt = fields["kind"], fields["values"]
        assert isinstance(kind_stmt, ast.AnnAssign) and kind_stmt.value is not None
        assert ast.unparse(kind_stmt.annotation) == f"Literal[{name!r}]"
        assert ast.literal_eval(kind_stmt.value) == name
        assert isinstance(values_stmt, ast.AnnAssign)
        assert ast.unparse(values_stmt.annotation) == kind.values.__name__
        # the runtime names it: `from schemas.wire import WaterBlockReading` works
        assert getattr(wire, wire.reading_model(name).__name__) is wire.reading_model(name)


def test_static_reading_has_the_fields_of_every_generated_model() -> None:
    """The static ``Reading`` (its base's fields and its own) is what each model has."""
    reading = type_checking_classes(ROOT / "schemas" / "wire.py")["Reading"]
    static = set(wire._ReadingBase.model_fields) | set(assigned(reading))
    for name in builtin_kinds():
        assert set(wire.reading_model(name).model_fields) == static, name
