"""Scaling curve: matching latency, memory and index load at growing sizes, and across many tenants.

Each step is a fresh SQLite database seeded through store_items, then measured by a fresh
serving process (bench/probe.py) that loads every tenant's index and times reuse + experts for
random stored items. The 1,000,000-item steps (one tenant, and 1,000 tenants of 1,000 items) take
well over ten minutes here, so they run only with `--full`; by default the many-tenant step is
100 tenants of 1,000 items.
"""
from __future__ import annotations

from bench.common import Row, Size, log
from bench.probe import run_probe
from bench.seed import fresh_dir, install_tenant, open_database, seeded_database, seed_items

NAME = "scaling"
DEFAULT_BACKENDS = ("sqlite",)
DEFAULT_TENANTS = 100


def run(size: Size, full: bool = False, backends: tuple[str, ...] = DEFAULT_BACKENDS,
        **_: object) -> list[Row]:
    """One tenant at each size, then many small tenants (SQLite: the embedded default)."""
    if backends[0] != "sqlite":
        raise ValueError("the scaling curve runs on SQLite only")
    steps = list(size.scaling_steps) + ([size.scaling_full_step] if full else [])
    rows: list[Row] = []
    for items in steps:
        rows += _single_tenant(items, size)
    tenants = size.tenants if (full or size.tiny) else min(size.tenants, DEFAULT_TENANTS)
    rows += _many_tenants(tenants, size.tenant_items, size)
    if not full and not size.tiny:
        rows.append(Row(NAME, "1,000,000-item steps", None, "", note=(
            f"not run: one tenant of {size.scaling_full_step:,} items and {size.tenants:,} tenants of "
            f"{size.tenant_items:,} items need `--full` (each is over ten minutes of indexing here)")))
    return rows


def _single_tenant(items: int, size: Size) -> list[Row]:
    url = f"sqlite:///{fresh_dir(f'scaling-{items}') / 'inflow.db'}"
    log(f"scaling: one tenant of {items:,} items")
    tenant = seeded_database(url, items)
    probe = run_probe(url, [tenant.id], size.queries, fresh=not size.tiny)
    return _rows(f"1 tenant x {items:,} items", probe)


def _many_tenants(tenants: int, per_tenant: int, size: Size) -> list[Row]:
    url = f"sqlite:///{fresh_dir(f'scaling-{tenants}x{per_tenant}') / 'inflow.db'}"
    log(f"scaling: {tenants:,} tenants of {per_tenant:,} items")
    db = open_database(url)
    ids = []
    seconds = 0.0
    for t in range(tenants):
        tenant = install_tenant(db, client_key=f"bench-client-{t}")
        seconds += seed_items(db, tenant.id, per_tenant, seed=1000 + t)
        ids.append(tenant.id)
        if (t + 1) % 50 == 0:
            log(f"scaling: {t + 1}/{tenants} tenants seeded")
    db.dispose()
    probe = run_probe(url, ids, size.queries, fresh=not size.tiny)
    rows = _rows(f"{tenants:,} tenants x {per_tenant:,} items", probe, all_tenants=True)
    total = tenants * per_tenant
    rows.append(Row(NAME, f"{tenants:,} tenants x {per_tenant:,} items: index throughput",
                    round(total / seconds, 1) if seconds else None, "items/s",
                    note="store_items, 500 per batch, tenant by tenant"))
    return rows


def _rows(label: str, probe: dict, all_tenants: bool = False) -> list[Row]:
    pct = probe["pct_ms"]
    loaded = "every tenant's index" if all_tenants else "the index"
    return [
        Row(NAME, f"{label}: reuse + experts query p95", round(pct["p95"], 2), "ms",
            note=f"p50 {pct['p50']:.1f} ms, p99 {pct['p99']:.1f} ms over {len(probe['samples'])} queries "
                 "(random stored items" + (", random tenants)" if all_tenants else ")"),
            extra=pct),
        Row(NAME, f"{label}: resident memory", round(probe["rss_mb"], 1), "MiB",
            note=f"fresh process with {loaded} loaded (baseline {probe['base_rss_mb']:.0f} MiB)"),
        Row(NAME, f"{label}: cold index load", round(probe["load_s"], 2), "s",
            note=f"building {loaded} from the database in a fresh process"),
    ]
