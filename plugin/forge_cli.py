"""`inflow forge-manifest [OUT]`: the Forge manifest for INFLOW_BASE_URL and INFLOW_FORGE_APP_ID."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from connect.forge_routes import TEMPLATE, render_manifest
from plugin.config import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `forge-manifest` subcommand (`make forge` runs it)."""
    parser = subparsers.add_parser(
        "forge-manifest", help="write the Forge manifest for INFLOW_BASE_URL (forge/manifest.yml)")
    parser.add_argument("out", nargs="?", type=Path, default=TEMPLATE.with_name("manifest.yml"),
                        help="where to write it (default: forge/manifest.yml)")
    parser.set_defaults(func=cmd_forge_manifest)


def cmd_forge_manifest(args: argparse.Namespace) -> int:
    """Render the manifest template with the environment's base URL and app id."""
    settings = Settings.from_env()
    try:
        text = render_manifest(settings.base_url, settings.forge_app_id)
    except ValueError as exc:
        print(f"forge manifest: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} (remote {settings.base_url})")
    return 0
