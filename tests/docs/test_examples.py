"""Every command and config in the docs works as written (docs/writing-docs.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from akita.cli import build_app
from cloud.errors import SettingsError
from cloud.production import is_placeholder
from cloud.settings import CloudSettings
from tests.docs.examples import (
    ROOT,
    Block,
    Command,
    SettingName,
    argv,
    blocks,
    check_block,
    commands,
    doc_files,
    infer_model,
    language,
    only_a_value_is_wrong,
    parse_only,
    repo_paths,
    secrets,
    setting_names,
    setting_problem,
)

FILES = doc_files()
BLOCKS = [b for f in FILES for b in blocks(f) if language(b) is not None]
COMMANDS = [c for f in FILES for c in commands(f)]


def _id(where: str) -> str:
    return where.replace("/", "_")


def test_the_docs_have_examples_of_every_kind() -> None:
    # a broken extractor must not pass by finding nothing
    langs = {language(b) for b in BLOCKS}
    assert {"toml", "yaml"} <= langs, langs
    assert len(BLOCKS) >= 10 and len(COMMANDS) >= 30, (len(BLOCKS), len(COMMANDS))
    assert any(f.name == "README.md" and "drivers" in f.parts for f in FILES)


@pytest.mark.parametrize("block", BLOCKS, ids=[_id(b.where) for b in BLOCKS])
def test_example_validates_against_its_model(block: Block) -> None:
    problem = check_block(block)
    assert problem is None, problem


CLOUD_BLOCKS = [
    b
    for b in BLOCKS
    if language(b) == "toml" and (b.model or infer_model(tomllib.loads(b.text))) == "cloud"
]


@pytest.mark.parametrize("block", CLOUD_BLOCKS, ids=[_id(b.where) for b in CLOUD_BLOCKS])
def test_secrets_in_examples_are_placeholders_production_refuses(block: Block) -> None:
    data = tomllib.loads(block.text)
    found = list(secrets(data))
    for name, value in found:
        assert is_placeholder(value), (
            f"{block.where}: {name} = {value!r} looks like a real secret; "
            "write '...' or '<what goes here>' (docs/writing-docs.md)"
        )
    if found:
        # copied into a production file as it stands, the example is refused
        with pytest.raises(SettingsError, match="placeholder"):
            CloudSettings.from_mapping({**data, "environment": "production"}, source="example")


@pytest.mark.parametrize("value", ["...", "<the SMTP password>"])
def test_production_refuses_each_placeholder_form(value: str) -> None:
    data = {"environment": "production", "smtp": {"host": "smtp.example", "password": value}}
    with pytest.raises(SettingsError, match=r"smtp\.password"):
        CloudSettings.from_mapping(data, source="example")


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    return build_app()


@pytest.mark.parametrize("command", COMMANDS, ids=[_id(c.where) for c in COMMANDS])
def test_command_runs_with_help_and_parses(command: Command, cli: typer.Typer) -> None:
    where, text = command.where, command.text
    args, synopsis = argv(text)
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=100)
    assert result.exit_code == 0, f"{where}: `{text} --help` exits {result.exit_code}:\n" + (
        result.output
    )
    try:
        parse_only(typer.main.get_command(cli), args)
    except Exception as exc:  # click's UsageError/BadParameter say what is wrong
        # a full command line must parse as written; a synopsis or a command named in
        # prose may leave out values, but every command and option it names must exist
        if not (synopsis or command.inline) or not only_a_value_is_wrong(exc):
            pytest.fail(f"{where}: `{text}` does not parse: {exc}")
    missing = [p for p in repo_paths(args) if not (ROOT / p).exists()]
    assert not missing, f"{where}: `{text}` names {missing}, which do not exist"


def test_the_installed_entry_point_runs() -> None:
    akita = Path(sys.executable).with_name("akita")
    exe = str(akita) if akita.exists() else shutil.which("akita")
    assert exe, "the 'akita' entry point is not installed in this environment"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout and "edge" in result.stdout


SETTINGS = [s for f in FILES for s in setting_names(f)]


@pytest.mark.parametrize("setting", SETTINGS, ids=[_id(s.where) for s in SETTINGS])
def test_settings_named_in_prose_exist(setting: SettingName) -> None:
    problem = setting_problem(setting.name)
    assert problem is None, f"{setting.where}: the docs name {problem}"


def test_a_setting_that_does_not_exist_is_caught() -> None:
    assert setting_problem("api.public_url") is None
    assert setting_problem("ingest.first_seen") is None
    problem = setting_problem("api.no_such_setting")
    assert problem is not None and "'no_such_setting'" in problem


def test_json_examples_are_checked_against_the_wire_contract(tmp_path: Path) -> None:
    # the docs hold no JSON block today; this keeps the JSON path honest for when they do
    doc = tmp_path / "wire.md"
    good = '{"gateway_id": "gw-kawajiri-01", "state": "online", "ts": "2026-06-01T00:00:00Z"}'
    bad = '{"gateway_id": "gw-kawajiri-01", "state": "sleeping"}'
    doc.write_text(
        f"```json wire:gateway_status\n{good}\n```\n\n```json wire:gateway_status\n{bad}\n```\n\n"
        f"```json\n{good}\n```\n\n```json wire:no_such_model\n{good}\n```\n"
    )
    first, second, unmarked, unknown = blocks(doc)
    assert check_block(first) is None
    assert "gateway_status example is refused" in (check_block(second) or "")
    assert "cannot tell which model" in (check_block(unmarked) or "")
    assert "no wire model 'no_such_model'" in (check_block(unknown) or "")
