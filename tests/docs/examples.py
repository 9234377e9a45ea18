"""Every example in the docs, extracted and checked against what the code accepts.

The convention writers follow is in docs/writing-docs.md. In short: a fenced block's
info string is ``<language> [<model>]``; without a model the block's content decides
(a TOML block whose sections are all cloud settings is a cloud settings example, and so
on). ``akita ...`` command lines, in shell blocks and in inline code, run with ``--help``
and are parsed as the real CLI would parse them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
# where the docs are read from: the checkout, or a copy (the broken-copy test sets it)
DOCS_ROOT = Path(os.environ.get("AKITA_DOCS_ROOT") or ROOT).resolve()
SHELL_LANGS = {"", "sh", "bash", "shell", "console", "text"}
DATA_LANGS = {"toml", "yaml", "yml", "json"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def doc_files(root: Path = DOCS_ROOT) -> list[Path]:
    """README.md, docs/*.md, deploy/**/README.md and the driver READMEs."""
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    files += sorted((root / "deploy").glob("**/README.md"))
    files += sorted((root / "edge" / "drivers").glob("*/README.md"))
    return [f for f in files if f.is_file()]


@dataclass(frozen=True)
class Block:
    """A fenced block: ``lang`` and ``model`` from the info string (model may be empty)."""

    path: Path
    line: int
    lang: str
    model: str
    text: str

    @property
    def where(self) -> str:
        return f"{_rel(self.path)}:{self.line}"


@dataclass(frozen=True)
class Command:
    """An ``akita ...`` line; ``inline`` when it is named in prose (`akita sim run` prints)."""

    where: str
    text: str
    inline: bool = False


def _rel(path: Path) -> Path:
    return path.relative_to(DOCS_ROOT) if path.is_relative_to(DOCS_ROOT) else path


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m["fence"], m["info"].strip().split()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        lang = info[0].lower() if info else ""
        model = info[1] if len(info) > 1 else ""
        found.append(Block(path, i + 1, lang, model, "\n".join(lines[i + 1 : j])))
        i = j + 1
    return found


def prose(path: Path) -> str:
    """The file with every fenced block blanked out (line numbers kept)."""
    out, inside, fence = [], False, ""
    for line in path.read_text(encoding="utf-8").splitlines():
        m = FENCE.match(line)
        if m and (not inside or line.strip().startswith(fence)):
            inside, fence = (not inside), m["fence"]
            out.append("")
            continue
        out.append("" if inside else line)
    return "\n".join(out)


# --- which language and model a block is -------------------------------------------------


def language(block: Block) -> str | None:
    """toml/yaml/json for a data example, None for anything else.

    An unlabelled block counts as data when it parses as JSON or as a TOML table, so a
    config cannot hide in a fence without a language.
    """
    if block.lang in DATA_LANGS:
        return "yaml" if block.lang == "yml" else block.lang
    if block.lang:
        return None
    text = block.text.strip()
    if text[:1] in "{[":
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            return "json"
    try:
        data = tomllib.loads(block.text)
    except tomllib.TOMLDecodeError:
        return None
    return "toml" if data else None


def load(block: Block, lang: str) -> Any:
    if lang == "toml":
        return tomllib.loads(block.text)
    if lang == "json":
        return json.loads(block.text)
    return yaml.safe_load(block.text)


def infer_model(data: Any) -> str | None:
    """The model a block's content belongs to, when its top-level keys say it."""
    from cloud.detect.config import DetectConfig
    from cloud.settings import CloudSettings
    from edge.config import EdgeConfig

    if not isinstance(data, dict) or not data:
        return None
    keys = set(data)
    for name, fields in (
        ("cloud", set(CloudSettings.model_fields)),
        ("edge", set(EdgeConfig.model_fields)),
        ("detect", set(DetectConfig.model_fields)),
    ):
        if keys <= fields:
            return name
    if keys <= {"notice", "counters", "events"}:
        return "citizen-procedures"
    return None


# --- validators: each raises with a message naming the problem ---------------------------


def _edge(data: Any) -> None:
    from edge.config import parse_config

    # an example may show only [[buses]] and [[devices]]: [gateway] is then the reader's
    data = {"gateway": {"id": "gw-docs-example"}, **data}
    parse_config(data, source="example")


def _edge_register(data: Any) -> None:
    from edge.config import Register

    devices = data.get("devices", [])
    # `[[devices.registers]]` alone makes "devices" one table, not a list of them
    devices = [devices] if isinstance(devices, dict) else devices
    registers = [r for d in devices for r in d.get("registers", [])]
    if not registers:
        raise ValueError("an edge-register example holds no [[devices.registers]] entry")
    for reg in registers:
        Register.model_validate(reg)


def _cloud(data: Any) -> None:
    from cloud.settings import CloudSettings

    # the shape only: placeholder secrets, refused in production by design, are checked
    # on their own (test_secrets_in_examples_are_placeholders_production_refuses)
    CloudSettings.from_mapping({**data, "environment": "development"}, source="example")


def _detect(data: Any) -> None:
    from cloud.detect.config import DetectConfig

    DetectConfig.model_validate(data)


def _citizen_procedures(data: Any) -> None:
    from cloud.citizen.catalog import load_procedures

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "procedures.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        guide = load_procedures(path)
    if not guide.events:
        raise ValueError("a procedure guide example lists no events")


def _wire(name: str) -> Callable[[Any], None]:
    def check(data: Any) -> None:
        from pydantic import TypeAdapter

        from schemas.export import MODELS

        if name not in MODELS:
            raise ValueError(f"no wire model {name!r}; known: {', '.join(MODELS)}")
        model = MODELS[name]
        if isinstance(model, TypeAdapter):
            model.validate_python(data)
        else:
            model.model_validate(data)

    return check


VALIDATORS: dict[str, Callable[[Any], None]] = {
    "edge": _edge,
    "edge-register": _edge_register,
    "cloud": _cloud,
    "detect": _detect,
    "citizen-procedures": _citizen_procedures,
}


def validator(model: str) -> Callable[[Any], None] | None:
    if model.startswith("wire:"):
        return _wire(model.removeprefix("wire:"))
    if model.startswith("external:") and len(model) > len("external:"):
        return lambda data: None  # a third party's format: it must parse, that is all
    return VALIDATORS.get(model)


def check_block(block: Block) -> str | None:
    """None when the example is valid, else a message naming the file, line and problem."""
    lang = language(block)
    if lang is None:
        return None
    try:
        data = load(block, lang)
    except (ValueError, yaml.YAMLError) as exc:  # TOMLDecodeError and JSONDecodeError too
        return f"{block.where}: not valid {lang}: {exc}"
    model = block.model or infer_model(data)
    if model is None:
        return (
            f"{block.where}: cannot tell which model this {lang} example belongs to; "
            f"add one to the fence, e.g. ```{lang} cloud (see docs/writing-docs.md)"
        )
    check = validator(model)
    if check is None:
        return f"{block.where}: unknown model {model!r} in the fence (see docs/writing-docs.md)"
    try:
        check(data)
    except Exception as exc:  # every validator's own error names the field
        return f"{block.where}: {model} example is refused: {exc}"
    return None


def secrets(data: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(setting, value) of every secret in a cloud example, by production's own rules:
    secret-named settings and the password inside a ``*url`` setting."""
    from cloud.production import is_secret_name, url_password

    if isinstance(data, dict):
        for k, v in data.items():
            name = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, str):
                secret = v if is_secret_name(name) else url_password(name, v)
                if secret is not None:
                    yield name, secret
            else:
                yield from secrets(v, name)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from secrets(v, f"{prefix}[{i}]")


# --- commands --------------------------------------------------------------------------

# a comment that is a command ("# from: akita cloud token create ..."), not prose naming one
_AKITA_COMMENT = re.compile(r"^\s*(?:[\w ]+:\s*)?(akita\s+[a-z-][^#]*)$")
_INLINE = re.compile(r"(?<!`)`([^`]+)`(?!`)", re.S)
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def commands(path: Path) -> list[Command]:
    """Every ``akita ...`` command line: in shell blocks (their comments too) and inline."""
    rel = _rel(path)
    found = []
    for block in blocks(path):
        if block.lang not in SHELL_LANGS or language(block) is not None:
            continue
        for n, line in _logical_lines(block.text):
            code, _, comment = line.partition(" #")
            if code.lstrip().startswith("#"):
                code, comment = "", code
            tokens = code.strip().removeprefix("$ ").split()
            while tokens and _ENV.match(tokens[0]):
                tokens.pop(0)
            if tokens and tokens[0] in ("akita", ".venv/bin/akita"):
                found.append(Command(f"{rel}:{block.line + n}", " ".join(["akita", *tokens[1:]])))
            if m := _AKITA_COMMENT.match(comment.lstrip("# ")):
                found.append(Command(f"{rel}:{block.line + n}", m[1].strip()))
    text = prose(path)
    for m in _INLINE.finditer(text):
        span = " ".join(m[1].split())
        if span.startswith("akita "):  # a bare `akita` is a name (database, uid), not a command
            lineno = text.count("\n", 0, m.start()) + 1
            found.append(Command(f"{rel}:{lineno}", span, inline=True))
    return found


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number within the block, line) with backslash continuations joined."""
    pending, start = "", 0
    for n, line in enumerate(text.splitlines(), start=1):
        if not pending:
            start = n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


_PLACEHOLDER_WORD = re.compile(r"^[A-Z][A-Z0-9_]*(\.[a-z]+)?(/.*)?$")


def argv(command: str) -> tuple[list[str], bool]:
    """The arguments after ``akita`` and whether the line is a synopsis (placeholders,
    ``[optional]`` parts, ``a|b`` alternatives, ``...``): a synopsis is only run with
    ``--help``, a concrete line is also parsed in full."""
    synopsis = any(mark in command for mark in ("[", "|", "...", "…", "<"))
    text = re.sub(r"\[[^\]]*\]", " ", command)  # optional parts are left out
    tokens = shlex.split(text)[1:]
    synopsis = synopsis or any(_PLACEHOLDER_WORD.match(t) for t in tokens if t != "--help")
    return tokens, synopsis


def parse_only(root: Any, args: list[str]) -> None:
    """Parse ``args`` as the CLI would, every sub-command down, without running anything:
    unknown options, missing required ones, bad choices and extra arguments all raise.

    ``root`` is the click command Typer builds (Typer ships its own copy of click, so
    groups are told apart by what they can do, not by class).
    """
    if "--help" in args or (not args and getattr(root, "no_args_is_help", False)):
        return  # help is shown, nothing is parsed
    ctx = root.make_context("akita", list(args))
    while hasattr(ctx.command, "resolve_command"):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            break
        name, sub, rest = ctx.command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        if not rest and getattr(sub, "no_args_is_help", False):
            return  # 'akita sim' alone shows the group's help
        ctx = sub.make_context(name, rest, parent=ctx)


def only_a_value_is_wrong(exc: Exception) -> bool:
    """A placeholder value or a required argument left out (fine in a synopsis or in
    prose), not an unknown command, an unknown option or an extra argument."""
    return any(c.__name__ == "BadParameter" for c in type(exc).__mro__)


def repo_paths(args: list[str]) -> list[str]:
    """Arguments naming a file in this repository (``deploy/edge/water_block.toml``)."""
    tops = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return [a for a in args if "/" in a and a.split("/", 1)[0] in tops and "://" not in a]


# --- setting names in prose --------------------------------------------------------------

_SETTING = re.compile(r"^[a-z_]+(\.[a-z_0-9]+)+$")
_FILE_SUFFIXES = {"py", "md", "toml", "yaml", "yml", "json", "db", "csv", "sh", "conf", "txt"}


@dataclass(frozen=True)
class SettingName:
    where: str
    name: str


def setting_names(path: Path) -> list[SettingName]:
    """Inline spans that name a cloud setting (`api.public_url`, `ingest.first_seen`)."""
    from cloud.settings import CloudSettings

    sections = set(CloudSettings.model_fields)
    text, found = prose(path), []
    for m in _INLINE.finditer(text):
        span = m[1].strip()
        parts = span.split(".")
        if _SETTING.match(span) and parts[0] in sections and parts[-1] not in _FILE_SUFFIXES:
            lineno = text.count("\n", 0, m.start()) + 1
            found.append(SettingName(f"{_rel(path)}:{lineno}", span))
    return found


def setting_problem(name: str) -> str | None:
    """None when the cloud settings have ``name``, else what is wrong with it."""
    from typing import get_args

    from pydantic import BaseModel

    from cloud.settings import CloudSettings

    model: type[BaseModel] | None = CloudSettings
    for i, part in enumerate(name.split(".")):
        if model is None:
            return None  # below a dict or list setting: free-form keys
        field = model.model_fields.get(part)
        if field is None:
            where = ".".join(name.split(".")[:i]) or "the top level"
            return (
                f"setting {name}: {where} has no {part!r} (known: {', '.join(model.model_fields)})"
            )
        kinds = [field.annotation, *get_args(field.annotation)]
        model = next((k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)), None)
    return None
