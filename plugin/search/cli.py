"""`inflow reindex [--tenant ID] [--shard NAME]`: rebuild search documents from the database."""
from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session

from connect.db import Database
from connect.models import Tenant
from plugin.config import DEFAULT_SHARD, Settings, shard_names
from plugin.matching.store import dialect_insert
from plugin.models.content import IndexProgress


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `reindex` and `index`."""
    writer = subparsers.add_parser(
        "index", help="write the local search shards until stopped (each `inflow worker` does it too)")
    writer.set_defaults(func=run_index)
    parser = subparsers.add_parser(
        "reindex", help="rebuild the search index from the database (all sites, or one)")
    parser.add_argument("--tenant", type=int, help="only this site (its tenant id)")
    parser.add_argument("--shard", help="move the site to this shard, rebuilding it there")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait (default 3600)")
    parser.set_defaults(func=run_reindex)


def run_index(_args: argparse.Namespace) -> int:
    """Write the local shards (standing by while another process holds one) until SIGTERM or Ctrl-C."""
    from plugin.search import indexer

    settings = Settings.from_env()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: indexer.halt(stop))
    db = Database(settings.database_url)
    print(f"indexing shard(s) {', '.join(settings.shards)} under {settings.index_dir}", flush=True)
    threads = indexer.start(db, settings, stop)
    for thread in threads:
        while thread.is_alive():
            thread.join(1.0)
    db.dispose()
    return 0


def request_rebuild(session: Session, tenant_id: int | None = None, shard: str | None = None) -> int:
    """Mark sites for a rebuild (and move one, with `shard`); how many were marked.

    The shard's indexer drops what it holds of each marked site and indexes it from the
    database; another shard's indexer drops a moved site's documents when it next sweeps.
    """
    if tenant_id is None:
        result = cast(CursorResult[Any], session.execute(update(IndexProgress).values(index_id=None)))
        return result.rowcount or 0
    values = {"index_id": None, **({"shard": shard} if shard else {})}
    session.execute(dialect_insert(session, IndexProgress).values(
        tenant_id=tenant_id, shard=shard or DEFAULT_SHARD, index_id=None, seq=-1)
        .on_conflict_do_update(index_elements=["tenant_id"], set_=values))
    return 1


def run_reindex(args: argparse.Namespace) -> int:
    """Mark the sites, then write the local shards here (or wait for the worker that writes them)."""
    from plugin import search

    settings = Settings.from_env()
    if args.shard and args.tenant is None:
        raise SystemExit("reindex: --shard moves one site: give --tenant too")
    if args.shard:
        try:
            shard_names(args.shard)  # a plain directory name, never a path
        except ValueError as exc:
            raise SystemExit(f"reindex: {exc}") from exc
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            if args.tenant is not None and session.get(Tenant, args.tenant) is None:
                raise SystemExit(f"reindex: no tenant {args.tenant}")
            marked = request_rebuild(session, args.tenant, args.shard)
        started = time.monotonic()
        target = args.shard or None
        if target and target not in settings.shards:
            print(f"marked tenant {args.tenant} for shard {target}; its machine's worker builds it")
            return 0
        done = search.catch_up(db, args.tenant, timeout=args.timeout)
        print(f"reindexed {marked} site(s) in {time.monotonic() - started:.1f} s"
              if done else "reindex: timed out waiting for the index; it goes on in the background")
        return 0 if done else 1
    finally:
        db.dispose()
