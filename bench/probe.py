"""Query latency and memory as a fresh serving process sees them.

Run as `python -m bench.probe URL TENANT_IDS QUERIES`: times the first query of a fresh process, then
reuse + experts for random stored items of the named tenants, and prints one JSON object. A
separate process, so its resident memory is what serving costs, not the seeding's.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from typing import Any

from bench.common import current_rss_mb, memory_mb, percentiles, self_peak_rss_mb

WARM_UP = 3


def suggest_for(db, tenant_id: int, item_id: int) -> None:
    """One panel's worth of matching: reuse and experts for a stored item."""
    from plugin.matching.service import suggest_experts, suggest_reuse
    from plugin.models.content import Item

    with db.session() as session:
        item = session.get(Item, item_id)
        suggest_reuse(session, tenant_id, item)
        suggest_experts(session, tenant_id, item)


def sample_items(db, tenant_ids: list[int], count: int, seed: int = 7) -> list[tuple[int, int]]:
    """`count` random (tenant, item id) pairs among the given tenants."""
    from sqlalchemy import select

    from plugin.models.content import Item

    rng = random.Random(seed)
    with db.session() as session:
        per_tenant = max(1, count // len(tenant_ids) + 1)
        chosen = rng.sample(tenant_ids, min(len(tenant_ids), count))
        pairs = []
        for tenant_id in chosen:
            ids = session.scalars(select(Item.id).where(Item.tenant_id == tenant_id)).all()
            pairs += [(tenant_id, i) for i in rng.sample(list(ids), min(per_tenant, len(ids)))]
    rng.shuffle(pairs)
    return pairs[:count]


def probe(url: str, tenant_ids: list[int], queries: int) -> dict[str, Any]:
    """Time the first query of this fresh process, then `queries` reuse + experts calls."""
    from bench.seed import open_database

    db = open_database(url, create=False)
    base_rss = current_rss_mb()
    pairs = sample_items(db, tenant_ids, queries + WARM_UP + 1)
    start = time.perf_counter()
    suggest_for(db, *pairs.pop())  # opens the shard: nothing else is loaded, for any site
    load_s = time.perf_counter() - start
    for tenant_id, item_id in pairs[:WARM_UP]:  # statement caches and lazy imports, not matching
        suggest_for(db, tenant_id, item_id)
    samples = []
    for tenant_id, item_id in pairs[WARM_UP:]:
        t0 = time.perf_counter()
        suggest_for(db, tenant_id, item_id)
        samples.append(time.perf_counter() - t0)
    return {"load_s": load_s, "samples": samples, "rss_mb": current_rss_mb(), "memory": memory_mb(),
            "base_rss_mb": base_rss, "peak_rss_mb": self_peak_rss_mb(),
            "pct_ms": {k: v * 1000 for k, v in percentiles(samples).items()}}


def run_probe(url: str, tenant_ids: list[int], queries: int, timeout: float = 3600,
              fresh: bool = True) -> dict[str, Any]:
    """Run the probe in a fresh Python process (or, for smoke runs, in this one)."""
    from bench.servers import bench_env

    if not fresh:
        return probe(url, tenant_ids, queries)

    ids = ",".join(str(t) for t in tenant_ids)
    out = subprocess.run([sys.executable, "-m", "bench.probe", url, ids, str(queries)],
                         env=bench_env(), capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"probe failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    url, ids, queries = argv[0], [int(t) for t in argv[1].split(",")], int(argv[2])
    print(json.dumps(probe(url, ids, queries)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
