"""connect/ is the host protocol alone: it never imports the product (plugin/) or its jobs."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    return names | {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module and not node.level}


def test_connect_never_imports_plugin_or_jobs() -> None:
    found = [f"{path.name}: {name}" for path in sorted((ROOT / "connect").glob("*.py"))
             for name in sorted(_imported_modules(path)) if name.split(".")[0] in ("plugin", "jobs")]
    assert found == []
