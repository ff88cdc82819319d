"""Databases with an installed tenant and N items, stored through the product's own code."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import corpus
from bench.common import ROOT, log, stopwatch, work_dir

BATCH = 500  # items per store_items call and commit, as a backfill page stores them
# Files whose change makes a cached seeded database stale.
SCHEMA_SOURCES = ("plugin/models", "plugin/matching", "plugin/content", "plugin/search",
                  "connect/models.py", "connect/db.py", "bench/corpus.py", "sandbox/data")


@dataclass(frozen=True)
class TenantInfo:
    """An installed tenant and the secret its host signs with."""

    id: int
    client_key: str
    secret: str
    base_url: str
    product: str = "jira"


def open_database(url: str, create: bool = True):  # -> connect.db.Database
    """The product's Database on `url`, every table created (as the test suite does)."""
    import plugin.models  # noqa: F401  (one metadata for every table)
    from connect.db import Database

    db = Database(url)
    if create:
        db.create_all()
    return db


def install_tenant(db, client_key: str = "bench-client", base_url: str = corpus.SITE,
                   product: str = "jira") -> TenantInfo:
    """Store an installed tenant as the lifecycle hook would."""
    from connect.models import Tenant

    secret = secrets.token_hex(32)
    with db.session() as session:
        tenant = Tenant(client_key=client_key, shared_secret=secret, base_url=base_url,
                        display_url=base_url, product_type=product)
        session.add(tenant)
        session.flush()
        return TenantInfo(tenant.id, client_key, secret, base_url, product)


def doc_batches(count: int, seed: int = 1, start: int = 0, project: str | None = None,
                batch: int = BATCH) -> Iterator[list]:
    """`count` generated items in backfill-page-sized lists (made as they are iterated)."""
    for offset in range(0, count, batch):
        yield list(corpus.item_docs(min(batch, count - offset), seed=seed, start=start + offset,
                                    project=project))


def store_batches(db, tenant_id: int, batches: Iterable[list],
                  progress: Callable[[int], None] | None = None) -> float:
    """Store each batch with store_items in its own transaction; seconds spent storing only."""
    from plugin.matching.store import store_items

    spent, done = 0.0, 0
    for docs in batches:
        with stopwatch() as elapsed, db.session() as session:
            store_items(session, tenant_id, docs)
        spent += elapsed()
        done += len(docs)
        if progress is not None:
            progress(done)
    return spent


def seed_items(db, tenant_id: int, count: int, seed: int = 1, start: int = 0,
               project: str | None = None, batch: int = BATCH,
               progress: Callable[[int], None] | None = None) -> float:
    """Store `count` generated items with store_items (as backfills do); returns seconds spent storing only."""
    return store_batches(db, tenant_id, doc_batches(count, seed, start, project, batch), progress)


def progress_logger(label: str, total: int, every: int = 10_000) -> Callable[[int], None]:
    """A progress callback that logs every `every` items."""
    def report(done: int) -> None:
        if done % every < BATCH or done == total:
            log(f"{label}: {done:,}/{total:,} items")
    return report


def code_fingerprint() -> str:
    """A hash of the sources that shape the stored rows (cache key for seeded databases)."""
    digest = hashlib.sha256()
    for name in SCHEMA_SOURCES:
        path = ROOT / name
        files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix != ".pyc") if path.is_dir() else [path]
        for file in files:
            if file.exists():
                digest.update(file.name.encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def cache_path(count: int, seed: int = 1, fingerprint: str | None = None) -> Path:
    return work_dir() / "cache" / f"items-{count}-s{seed}-{fingerprint or code_fingerprint()}.db"


def index_beside(folder: Path) -> Path:
    """Use `folder`/index as the search index of this process and of every server it starts.

    A benchmark's database and its index go together: the database's progress rows name the
    identity of the index that holds its items.
    """
    path = folder / "index"
    os.environ["INFLOW_INDEX_DIR"] = str(path)
    return path


def build_index(db) -> float:
    """Index everything the database holds in this process (as a worker's indexer would); seconds."""
    from plugin import search

    with stopwatch() as elapsed:
        if not search.catch_up(db, timeout=24 * 3600):
            raise RuntimeError("the index did not catch up")
    return elapsed()


def store_in_cache(db_file: Path, tenant: TenantInfo, count: int, seed: int = 1,
                   fingerprint: str | None = None) -> None:
    """Keep a seeded SQLite file and its index so later benchmarks need not seed them again.

    `fingerprint` is the code's as it was when seeding began (the code may change meanwhile).
    """
    target = cache_path(count, seed, fingerprint)
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in target.parent.glob(f"items-{count}-s{seed}-*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    _copy_sqlite(db_file, target)
    shutil.copytree(db_file.parent / "index", target.with_suffix(".index"))
    target.with_suffix(".json").write_text(json.dumps(asdict(tenant)))


def seeded_sqlite(dest: Path, count: int, seed: int = 1) -> TenantInfo:
    """A SQLite file at `dest` with one tenant and `count` items, and their index beside it
    (from the cache when fresh)."""
    fingerprint = code_fingerprint()
    cached = cache_path(count, seed, fingerprint)
    index = index_beside(dest.parent)
    if cached.exists() and cached.with_suffix(".json").exists() and cached.with_suffix(".index").exists():
        _copy_sqlite(cached, dest)
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(cached.with_suffix(".index"), index)
        log(f"seeded database and index from cache {cached.name}")
        return TenantInfo(**json.loads(cached.with_suffix(".json").read_text()))
    db = open_database(f"sqlite:///{dest}")
    tenant = install_tenant(db)
    seconds = seed_items(db, tenant.id, count, seed, progress=progress_logger("seeding", count))
    log(f"seeded {count:,} items in {seconds:.1f} s; indexed in {build_index(db):.1f} s")
    db.dispose()
    store_in_cache(dest, tenant, count, seed, fingerprint)
    return tenant


def seeded_database(url: str, count: int, seed: int = 1) -> TenantInfo:
    """Any database URL with one tenant and `count` items, indexed (SQLite files come from the cache)."""
    if url.startswith("sqlite:///"):
        return seeded_sqlite(Path(url[len("sqlite:///"):]), count, seed)
    index_beside(fresh_dir("index-of-postgresql"))
    db = open_database(url)
    tenant = install_tenant(db)
    seed_items(db, tenant.id, count, seed, progress=progress_logger("seeding", count))
    build_index(db)
    db.dispose()
    return tenant


def _copy_sqlite(source: Path, dest: Path) -> None:
    """Copy a SQLite database consistently (WAL included) via the backup API."""
    import sqlite3

    dest.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def fresh_dir(name: str) -> Path:
    """An empty folder under the bench work folder."""
    path = work_dir() / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
