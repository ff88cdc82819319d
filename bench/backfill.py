"""Backfill: `inflow backfill` pulling every issue from the fake Jira site over signed REST calls.

The fake site (sandbox/site, a real HTTP server on loopback that verifies every app JWT and
serves issues as REST v3 with ADF bodies) runs in this process; the backfill runs as the
`inflow backfill --tenant …` command in its own process, and its rate is read from the
backfill's own started/finished times, so Python start-up is not counted.
"""
from __future__ import annotations

import subprocess
import sys
import time

from bench import corpus
from bench.common import Row, Size, log
from bench.http import adopt_site
from bench.seed import fresh_dir, install_tenant, open_database
from bench.servers import bench_env, postgres

NAME = "backfill"
DEFAULT_BACKENDS = ("sqlite", "postgresql")
MIN_ISSUES_PER_S = 200


def run(size: Size, backends: tuple[str, ...] = ("sqlite",), **_: object) -> list[Row]:
    """Backfill throughput on each backend."""
    from sandbox.site.server import FakeHost

    site = FakeHost().start()
    try:
        log(f"backfill: loading {size.backfill_issues:,} issues into the fake site")
        site.load_jira_issues([corpus.jira_issue(i) for i in range(size.backfill_issues)])
        rows: list[Row] = []
        for backend in backends:
            if backend == "sqlite":
                rows += run_on(f"sqlite:///{fresh_dir('backfill-sqlite') / 'inflow.db'}", backend, size, site)
            else:
                with postgres() as url:
                    rows += run_on(url, backend, size, site)
        return rows
    finally:
        site.stop()


def run_on(url: str, backend: str, size: Size, site) -> list[Row]:
    """One complete backfill into an empty database."""
    from sqlalchemy import select

    from plugin.models.pipeline import BackfillState

    db = open_database(url)
    tenant = adopt_site(db, install_tenant(db), site)
    env = bench_env(DATABASE_URL=url, INFLOW_AUTH_SERVER_URL=site.url, INFLOW_LOG_LEVEL="warning")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "plugin.cli", "backfill", "--tenant", tenant.client_key],
                         env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"inflow backfill failed ({out.returncode}): {out.stderr[-1500:]}")
    with db.session() as session:
        state = session.scalar(select(BackfillState).where(BackfillState.tenant_id == tenant.id))
        done, started, finished = state.items_done, state.started_at, state.finished_at
    db.dispose()
    seconds = (finished - started).total_seconds()
    rate = done / seconds if seconds > 0 else 0.0
    label = f"[{backend}]"
    return [
        Row(NAME, f"{label} backfill throughput ({done:,} issues from the fake site)", round(rate, 1),
            "issues/s", target=f">= {MIN_ISSUES_PER_S} issues/s", passed=rate >= MIN_ISSUES_PER_S,
            note=f"`inflow backfill`: enhanced JQL search pages of 100 over signed HTTP, v3 ADF -> "
                 f"ItemDoc -> apply_docs; {seconds:.1f} s between the run's started/finished times "
                 f"({wall:.1f} s wall incl. process start)",
            extra={"issues": done, "seconds": seconds, "wall_s": wall}),
    ]
