"""The whole index directory deleted while workers serve: one writer rebuilds it, panels keep their
stored suggestions meanwhile, and the index converges to the database."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from bench.common import wait_until
from plugin.matching.precompute import refresh_suggestions, stored_suggestions
from plugin.matching.store import upsert_items
from plugin.models.content import IndexProgress
from plugin.search import catch_up, indexed_through, site_view
from plugin.search.indexer import ShardLock
from tests.matching.helpers import database
from tests.search.test_writers import _corpus, _indexer, _keys


def _writers(procs: list) -> int:
    """How many of the processes hold a lock of any file, deleted or not (a writer holds its
    shard's lock and Tantivy's; one that stands by holds none)."""
    pids = {int(line.split()[4]) for line in Path("/proc/locks").read_text().splitlines()
            if len(line.split()) > 4 and line.split()[4].isdigit()}
    return sum(proc.pid in pids for proc in procs)


def _progress(db, tenant: int) -> str | None:  # noqa: ANN001
    with db.session() as s:
        return s.get(IndexProgress, tenant).index_id


def test_the_index_directory_deleted_under_two_workers_is_rebuilt_by_one(
        sqlite_url: str, index_dir: Path) -> None:
    db, tenant = database(sqlite_url)
    with db.session() as s:
        items = upsert_items(s, tenant, _corpus(200))
        target = items[0].id
    procs = [_indexer(sqlite_url), _indexer(sqlite_url)]
    try:
        assert catch_up(db, timeout=60)
        with db.session() as s:
            refresh_suggestions(s, tenant, target)
            before = stored_suggestions(s, tenant, target)
            old = s.get(IndexProgress, tenant).index_id
        assert before and before["reuse"]

        shutil.rmtree(index_dir)  # the shard and its lock file, while both processes run

        with db.session() as s:  # until rebuilt, panels read what was stored
            assert stored_suggestions(s, tenant, target) == before
        assert wait_until(lambda: _progress(db, tenant) not in (None, old), 60, interval=0.2)  # rebuilt by a worker
        time.sleep(1.1)  # this process's reader looks at the shard's identity once a second
        assert catch_up(db, timeout=60)
        with db.session() as s:
            progress = s.get(IndexProgress, tenant)
            assert progress.index_id not in (None, old)
            assert indexed_through(s, tenant) == progress.seq
            assert site_view(s, tenant).count == 200
        assert "APP-7" in _keys(db, tenant, "marker7")
        time.sleep(3)  # the standby's next try at the lock (every 2 s)
        assert _writers(procs) == 1  # one writer, not one per lock file
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_lock_whose_file_was_deleted_is_no_longer_held(tmp_path: Path) -> None:
    lock = ShardLock(tmp_path, "0")
    assert lock.acquire() and lock.held()
    (tmp_path / "0.lock").unlink()
    assert not lock.held()  # another process could take a new file at that path
    other = ShardLock(tmp_path, "0")
    assert other.acquire() and other.held()
    other.release()
    lock.release()
