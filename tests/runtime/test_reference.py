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


def _options(parser: argparse.ArgumentParser) -> list[str]:
    """The parser's long options and those of its own subcommands (`eval reuse --truth`)."""
    found = [o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += [o for sub in action.choices.values() for o in _options(sub)]
    return found


@pytest.mark.parametrize("name", sorted(_subcommands(build_parser())))
def test_every_subcommand_and_its_options_are_documented_in_its_row(name: str) -> None:
    rows = [line for line in _section("The `inflow` command").splitlines()
            if line.startswith((f"| `inflow {name} ", f"| `inflow {name}`"))]
    assert len(rows) == 1, name
    assert [o for o in _options(_subcommands(build_parser())[name]) if o not in rows[0]] == [], name


def test_every_command_the_docs_name_exists() -> None:
    commands = set(_subcommands(build_parser()))
    named = {m for doc in DOCS for m in re.findall(r"`inflow ([a-z][a-z-]*)", doc.read_text("utf-8"))}
    assert named - commands == set()
