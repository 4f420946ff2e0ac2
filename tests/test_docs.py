"""The docs say what the code does: every command has help and a section in docs/commands.md, every setting a row."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer.main

from camsync.cli import app
from camsync.settings import settings_vars

ROOT = Path(__file__).resolve().parent.parent


def _gen_docs():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "tools" / "gen_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _all_commands() -> list[tuple[str, object]]:
    return [(" ".join(path), command) for path, command in _gen_docs().walk(typer.main.get_command(app), ["camsync"])]


def test_every_command_has_help() -> None:
    missing = [name for name, command in _all_commands() if not (getattr(command, "help", "") or "").strip()]
    assert missing == []


def test_every_command_has_a_section_in_commands_md() -> None:
    text = (ROOT / "docs" / "commands.md").read_text()
    missing = [name for name, _command in _all_commands() if f"## `{name}`" not in text]
    assert missing == [], "run `python tools/gen_docs.py`"


def test_generated_docs_are_current() -> None:
    gen = _gen_docs()
    assert (ROOT / "docs" / "commands.md").read_text() == gen.commands_md(), "run `python tools/gen_docs.py`"
    assert (ROOT / "docs" / "configuration.md").read_text() == gen.configuration_md(), "run `python tools/gen_docs.py`"


def test_every_variable_is_in_configuration_md_and_readme() -> None:
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for _name, spec, _default in settings_vars():
        assert f"`{spec.env}`" in configuration, spec.env
        assert spec.env in readme, f"{spec.env} is missing from the README's configuration table"


def test_readme_names_the_two_setup_commands() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    assert "make demo" in first_screen and "make test" in first_screen
