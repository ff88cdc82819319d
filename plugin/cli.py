"""The `inflow` command: each subcommand module registers its own parsers."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each module has `register(subparsers)` adding parsers whose `func(args) -> int` runs the command.
COMMAND_MODULES = (
    "plugin.runtime_cli",      # serve, web, worker, migrate, status
    "plugin.evaluation.cli",   # eval reuse | eval experts
    "plugin.search.cli",       # reindex
    "jobs.cli",                # backfill
    "plugin.forge_cli",        # forge-manifest
    "sandbox.demo.cli",        # demo (the sandbox site; only this command and /demo use it)
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="inflow", description="Inflow for Jira and Confluence")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `inflow` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
