"""Scaling curve: one site at growing sizes, and growing numbers of small sites in one shard.

Each step is a fresh SQLite database seeded through store_items and indexed by `inflow index` in a
process of its own (the worker's part: its time and memory are reported), then measured by a
fresh serving process (bench/probe.py) that times reuse + experts for random stored items of
random sites: what a web worker holds and spends. The 1,000,000-item and 10,000-site steps take
well over ten minutes here, so they run only with `--full`.
"""
from __future__ import annotations

from pathlib import Path

from bench.common import Row, Size, log, stopwatch
from bench.indexing import IndexerProcess
from bench.probe import run_probe
from bench.seed import (
    fresh_dir,
    index_beside,
    install_tenant,
    open_database,
    seed_items,
)

NAME = "scaling"
DEFAULT_BACKENDS = ("sqlite",)


def run(size: Size, full: bool = False, backends: tuple[str, ...] = DEFAULT_BACKENDS,
        **_: object) -> list[Row]:
    """One site at each size, then many small sites (SQLite: the embedded default)."""
    if backends[0] != "sqlite":
        raise ValueError("the scaling curve runs on SQLite only")
    rows: list[Row] = []
    for items in list(size.scaling_steps) + ([size.scaling_full_step] if full else []):
        rows += _step(f"1 site x {items:,} items", {"bench-site": (items, 1)}, size)
    for sites in list(size.site_steps) + ([size.site_full_step] if full else []):
        layout = {f"bench-site-{n}": (size.site_items, 1000 + n) for n in range(sites)}
        rows += _step(f"{sites:,} sites x {size.site_items:,} items", layout, size)
    if not full and not size.tiny:
        rows.append(Row(NAME, "long steps", None, "", note=(
            f"not run: one site of {size.scaling_full_step:,} items and {size.site_full_step:,} sites of "
            f"{size.site_items:,} items need `--full` (each is over ten minutes here)")))
    return rows


def _step(label: str, sites: dict[str, tuple[int, int]], size: Size) -> list[Row]:
    folder = fresh_dir(f"scaling-{label.replace(' ', '')}")
    url = f"sqlite:///{folder / 'inflow.db'}"
    index = index_beside(folder)
    log(f"scaling: {label}")
    db = open_database(url)
    ids, stored_s = _seed(db, sites)
    writer = IndexerProcess(url)
    with stopwatch() as elapsed:
        for tenant_id in ids:
            writer.wait_applied(db, tenant_id)
        indexed_s = elapsed()
    written = writer.report()
    writer.stop()
    db.dispose()
    probe = run_probe(url, ids, size.queries, fresh=not size.tiny)
    return _rows(label, probe, stored_s, indexed_s, written, index, len(ids) > 1)


def _seed(db, sites: dict[str, tuple[int, int]]) -> tuple[list[int], float]:
    """Install each site and store its items (500 per batch, as a backfill page); seconds storing."""
    ids, seconds = [], 0.0
    for n, (key, (items, seed)) in enumerate(sites.items()):
        tenant = install_tenant(db, client_key=key)
        seconds += seed_items(db, tenant.id, items, seed=seed)
        ids.append(tenant.id)
        if len(sites) > 1 and (n + 1) % 1000 == 0:
            log(f"scaling: {n + 1:,}/{len(sites):,} sites seeded")
    return ids, seconds


def _disk(index: Path) -> tuple[float, int]:
    files = [p for p in index.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20, len(files)


def _rows(label: str, probe: dict, stored_s: float, indexed_s: float, written: dict, index: Path,
          many: bool) -> list[Row]:
    pct = probe["pct_ms"]
    disk_mb, files = _disk(index)
    spread = ", random sites)" if many else ")"
    return [
        Row(NAME, f"{label}: reuse + experts query p95", round(pct["p95"], 2), "ms",
            note=f"p50 {pct['p50']:.1f} ms, p99 {pct['p99']:.1f} ms over {len(probe['samples'])} queries "
                 f"(random stored items{spread}", extra=pct),
        Row(NAME, f"{label}: serving process memory", round(probe["rss_mb"], 1), "MiB",
            note=f"resident after the queries in a fresh process (baseline {probe['base_rss_mb']:.0f} MiB): "
                 f"{probe['memory']['anon']:.0f} MiB its own, {probe['memory']['file']:.0f} MiB of mapped "
                 "index files, shared with every process through the page cache",
            extra=probe["memory"]),
        Row(NAME, f"{label}: indexer memory", round(written["peak_rss_mb"], 1), "MiB",
            note=f"peak resident of `inflow index`, the worker's part, while it indexed them all; sampled "
                 f"every 0.2 s, its own memory peaked at {written['peak_anon_mb']:.0f} MiB and its mapped "
                 f"index files (page cache its merges read, shared) at {written['peak_file_mb']:.0f} MiB; "
                 f"at the end {written['anon_mb']:.0f} MiB its own, {written['file_mb']:.0f} MiB mapped",
            extra={"peak_anon_mb": written["peak_anon_mb"], "peak_file_mb": written["peak_file_mb"]}),
        Row(NAME, f"{label}: index time", round(indexed_s, 1), "s",
            note=f"`inflow index` after the store ({stored_s:.1f} s storing; {written['cpu_s']:.1f} s of its CPU)"),
        Row(NAME, f"{label}: index on disk", round(disk_mb, 1), "MiB", note=f"{files} files in the shard"),
    ]
