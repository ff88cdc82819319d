"""Whether the ACE peer can run here: wrk on PATH and its npm packages installed."""
from __future__ import annotations

import shutil

from bench.common import ROOT

PEER = ROOT / "bench" / "peers" / "ace"


def peer_ready() -> bool:
    """True when wrk and the peer's node_modules (with sqlite3 built) are present."""
    built = (PEER / "node_modules" / "sqlite3" / "build").exists() or \
        (PEER / "node_modules" / "sqlite3" / "lib" / "binding").exists()
    return bool(shutil.which("wrk") and shutil.which("node") and built)
