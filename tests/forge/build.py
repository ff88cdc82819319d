"""Builds the Forge Custom UI bundles for tests (npm ci once, then esbuild)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

FORGE = ROOT / "forge"
RESOURCES = ("issue-panel", "page-panel", "project-settings", "personal-settings")


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Forge UI NOT TESTED: node is not installed")
    return node


def build_ui(out: Path, bridge: Path | None = None) -> Path:
    """Build every resource into out/<resource>/ (with a stubbed @forge/bridge when given)."""
    node = node_or_skip()
    if not (FORGE / "node_modules" / "esbuild").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=FORGE, check=True,
                       timeout=300)
    args = [node, "build.mjs", "--out", str(out)] + (["--bridge", str(bridge)] if bridge else [])
    subprocess.run(args, cwd=FORGE, check=True, timeout=120, capture_output=True)
    return out
