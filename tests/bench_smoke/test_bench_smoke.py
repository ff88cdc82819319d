"""Each benchmark module imports and runs end to end at a tiny size (no timing is asserted)."""
from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS, render_table
from bench.common import TINY
from bench.peers_check import peer_ready

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_at_tiny_size_and_reports_figures(name: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    if name == "ace" and not peer_ready():
        pytest.skip("ACE peer NOT TESTED: wrk or bench/peers/ace/node_modules missing "
                    "(make bench installs them)")
    monkeypatch.setenv("INFLOW_BENCH_WORK", str(tmp_path))
    module = importlib.import_module(f"bench.{name}")

    rows = module.run(TINY, backends=("sqlite",), full=False)

    assert rows, f"{name} reported no figures"
    for row in rows:
        assert row.benchmark == name and row.name and row.unit is not None
        assert row.value is None or isinstance(row.value, (int, float)) and not math.isnan(row.value)
        assert row.passed in (True, False, None)
    table = render_table([r.as_dict() for r in rows], {"commit": "test", "size": "tiny", "machine": {
        "cores": 2, "cpu": "test", "load_avg_1m_at_start": 0}})
    assert all(row.name in table for row in rows)
