"""docs/reference.md names every environment variable and `inflow` command the code has, and no other."""
from __future__ import annotations

import argparse
import inspect
import re

import pytest

from plugin.cli import build_parser
from plugin.config import PROJECT_ROOT, Settings

REFERENCE = (PROJECT_ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


def _section(title: str) -> str:
    """The text of one `## title` section of the reference."""
    return REFERENCE.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_the_variables_table_is_what_settings_read() -> None:
    read = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', inspect.getsource(Settings.from_env)))
    listed = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", _section("Environment variables"), re.M))
    assert read == listed


@pytest.mark.parametrize("name", sorted(_subcommands(build_parser())))
def test_every_subcommand_and_its_options_are_documented(name: str) -> None:
    text = _section("The `inflow` command")
    assert f"`inflow {name}" in text or f"`{name}`" in text, name
    options = [o for a in _subcommands(build_parser())[name]._actions for o in a.option_strings
               if o.startswith("--") and o != "--help"]
    assert [o for o in options if o not in text] == [], name


def test_every_command_the_docs_name_exists() -> None:
    commands = set(_subcommands(build_parser()))
    named = {m for doc in DOCS for m in re.findall(r"`inflow ([a-z][a-z-]*)", doc.read_text("utf-8"))}
    assert named - commands == set()
