"""Panel server time in-process at N items: p50/p95 per panel, stored vs computed now, cProfile.

    .venv/bin/python tests/panels/profile_panels.py          # N=20000 items, 150 with stored suggestions
    N=100000 HOST_DELAY=0.02 .venv/bin/python tests/panels/profile_panels.py   # 20 ms host round trip
    PROFILE=experts:stored SORT=tottime .venv/bin/python tests/panels/profile_panels.py

Items are resampled from sandbox/data (bench/corpus.py) and stored with upsert_items; the fake host
answers permission checks over loopback. The seeded database is kept in $INFLOW_PROFILE_WORK.
Times are the Flask handler's (test client), without the web server or the network to the browser.
"""
from __future__ import annotations

import cProfile
import os
import pstats
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
N = int(os.environ.get("N", "20000"))
STORED = int(os.environ.get("STORED", "150"))
REQS = int(os.environ.get("REQS", "120"))
WORK = Path(os.environ.get("INFLOW_PROFILE_WORK", "/tmp/inflow-panel-profile"))
WORK.mkdir(parents=True, exist_ok=True)
SEED_DB = WORK / f"seed-{N}.db"

from bench import corpus  # noqa: E402
from bench.http import adopt_site, start_fake_site  # noqa: E402
from bench.seed import install_tenant, open_database, seed_items  # noqa: E402


def seed() -> None:
    if SEED_DB.exists():
        return
    db = open_database(f"sqlite:///{SEED_DB}.tmp")
    t = install_tenant(db)
    t0 = time.time()
    seed_items(db, t.id, N)
    print(f"seeded {N} in {time.time() - t0:.0f}s", flush=True)
    from plugin.matching.precompute import refresh_suggestions
    from plugin.matching.store import get_item
    t0 = time.time()
    with db.session() as session:
        for index in range(STORED):
            project = corpus.PROJECTS[index % len(corpus.PROJECTS)]
            item = get_item(session, t.id, "jira", f"{project}-{index + 1}")
            refresh_suggestions(session, t.id, item.id)
    print(f"stored suggestions for {STORED} in {time.time() - t0:.0f}s", flush=True)
    db.dispose()
    os.rename(f"{SEED_DB}.tmp", SEED_DB)


def key_of(index: int) -> tuple[str, str]:
    project = corpus.PROJECTS[index % len(corpus.PROJECTS)]
    return f"{project}-{index + 1}", project


def main() -> None:
    seed()
    run_db = WORK / "run.db"
    shutil.copy(SEED_DB, run_db)
    from bench.seed import TenantInfo
    from tests.conftest import TenantAuth, build_app
    site = start_fake_site(N)
    db = open_database(f"sqlite:///{run_db}", create=False)
    from connect.models import Tenant
    with db.session() as s:
        tid = s.query(Tenant.id).scalar()
    tenant = adopt_site(db, TenantInfo(tid, "x", "x", "x"), site)
    db.dispose()
    if os.environ.get("HOST_DELAY"):  # a real site is a network round trip away
        site.inject("/rest/api/3/permissions/check", 200, times=10**6,
                    delay=float(os.environ["HOST_DELAY"]))
    app = build_app(f"sqlite:///{run_db}", INFLOW_APP_KEY=site.app_key)
    client = app.test_client()
    auth = TenantAuth(tenant.id, tenant.client_key, tenant.secret, tenant.base_url, "jira")
    rng = random.Random(7)

    def get(panel: str, index: int, viewer: int) -> float:
        key, project = key_of(index)
        path = f"/jira/panels/{panel}?issueKey={key}&projectKey={project}"
        headers = auth.headers("GET", path, sub=f"bench-viewer-{viewer}")
        t0 = time.perf_counter()
        r = client.get(path, headers=headers)
        dt = time.perf_counter() - t0
        assert r.status_code == 200, (r.status_code, r.get_data()[:300])
        return dt

    t0 = time.perf_counter()
    get("reuse", 0, 0)
    print(f"cold first panel (index build): {time.perf_counter() - t0:.2f}s", flush=True)
    for i in range(10):
        get(("experts", "reuse", "contributors")[i % 3], rng.randrange(N), i)
    for panel in ("experts", "reuse", "contributors"):
        for label, pick in (("stored", lambda: rng.randrange(STORED)),
                            ("on-demand", lambda: STORED + rng.randrange(N - STORED))):
            if panel == "contributors" and label == "stored":
                continue
            samples = [get(panel, pick(), rng.randrange(20)) * 1000 for _ in range(REQS)]
            samples.sort()
            p50 = statistics.median(samples)
            p95 = samples[int(0.95 * len(samples)) - 1]
            print(f"{panel:13s} {label:9s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms", flush=True)
    if os.environ.get("PROFILE"):
        panel, which = os.environ["PROFILE"].split(":")
        pr = cProfile.Profile()
        idx = [rng.randrange(STORED) if which == "stored" else STORED + rng.randrange(N - STORED)
               for _ in range(40)]
        pr.enable()
        for k, i in enumerate(idx):
            get(panel, i, k % 20)
        pr.disable()
        st = pstats.Stats(pr)
        st.sort_stats(os.environ.get("SORT", "cumulative")).print_stats(int(os.environ.get("LINES", "45")))
    site.stop()


if __name__ == "__main__":
    main()
