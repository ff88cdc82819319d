"""Who writes a shard: one process at a time, another takes over, and the index converges to the database."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.common import wait_until
from plugin.config import Settings
from plugin.matching.service import suggest_experts, suggest_reuse
from plugin.matching.store import upsert_item, upsert_items
from plugin.models.content import IndexProgress
from plugin.search import catch_up, current_seq, indexed_through, site_view
from plugin.search.indexer import ShardLock, local_shards
from plugin.search.shard import IDENTITY, close_all
from tests.conftest import ROOT, install_tenant
from tests.matching.helpers import database, doc


def _indexer(url: str) -> subprocess.Popen:
    """`inflow index`: what a worker's indexer threads do, in a process of its own."""
    proc = subprocess.Popen([sys.executable, "-m", "plugin.cli", "index"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "DATABASE_URL": url})
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"indexing shard(s) 0")
    return proc


def _holder(procs: list[subprocess.Popen], index_dir: Path) -> subprocess.Popen:
    """The process that holds the shard's lock (fuser-free: the one whose death frees it)."""
    out = Path("/proc/locks").read_text()
    inode = os.stat(index_dir / "0.lock").st_ino
    pids = {int(line.split()[4]) for line in out.splitlines() if f":{inode} " in line}
    return next(p for p in procs if p.pid in pids)


def _keys(db, tenant: int, text: str) -> set[str]:
    with db.session() as s:
        return {r.key for r in suggest_reuse(s, tenant, text, limit=20)}


def test_two_worker_processes_one_writes_the_shard_and_the_other_takes_over(
        sqlite_url: str, index_dir: Path) -> None:
    db, first = database(sqlite_url)
    second = install_tenant(db).tenant_id
    procs = [_indexer(sqlite_url), _indexer(sqlite_url)]
    try:
        with db.session() as s:  # two sites, one shard: both reach the index
            upsert_item(s, first, doc("APP-1", "Kafka consumer lag", people={"ann": "assignee"}))
            upsert_item(s, second, doc("OPS-1", "Kafka consumer lag", people={"bob": "assignee"}))
        assert catch_up(db, timeout=30)  # a worker writes: this process waits for it
        assert _keys(db, first, "kafka lag") == {"APP-1"} and _keys(db, second, "kafka lag") == {"OPS-1"}
        writer = _holder(procs, index_dir)
        writer.kill()
        writer.wait()
        with db.session() as s:
            upsert_item(s, first, doc("APP-2", "Kafka consumer lag again", people={"cy": "assignee"}))
        assert catch_up(db, first, timeout=30)  # the standby took the lock over
        assert _keys(db, first, "kafka lag") == {"APP-1", "APP-2"}
        with db.session() as s:
            assert {e.account_id for e in suggest_experts(s, first, "kafka lag", min_confidence=0)} == {"ann", "cy"}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def _corpus(count: int) -> list:
    return [doc(f"APP-{n}", f"Widget {n} crashes", f"marker{n} failure in module {n % 7}") for n in range(count)]


def test_a_writer_killed_mid_commit_leaves_an_index_that_converges(sqlite_url: str, index_dir: Path) -> None:
    db, tenant = database(sqlite_url)
    with db.session() as s:
        upsert_items(s, tenant, _corpus(3000))
    proc = _indexer(sqlite_url)
    time.sleep(0.8)  # somewhere inside its first steps and commits
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert catch_up(db, timeout=60)
    with db.session() as s:
        assert site_view(s, tenant).count == 3000
    for n in (0, 1499, 2999):
        assert f"APP-{n}" in _keys(db, tenant, f"marker{n}")


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_lost_or_damaged_index_is_rebuilt_while_stored_suggestions_stay(
        sqlite_url: str, index_dir: Path, damage: str) -> None:
    from plugin.matching.precompute import refresh_suggestions, stored_suggestions

    db, tenant = database(sqlite_url)
    with db.session() as s:
        items = upsert_items(s, tenant, _corpus(40))
        target = items[0].id
    assert catch_up(db)
    with db.session() as s:
        refresh_suggestions(s, tenant, target)
        before = stored_suggestions(s, tenant, target)
        assert before and before["reuse"]
        old = s.get(IndexProgress, tenant).index_id
    shard = index_dir / "0"
    if damage == "deleted":
        shutil.rmtree(shard)
    else:
        for path in shard.iterdir():
            if path.name != IDENTITY:
                path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    close_all()  # a process starting now finds the damage
    with db.session() as s:  # until rebuilt, panels read what was stored
        assert stored_suggestions(s, tenant, target) == before
    assert catch_up(db)
    with db.session() as s:
        progress = s.get(IndexProgress, tenant)
        assert progress.index_id not in (None, old) and indexed_through(s, tenant) == progress.seq
        assert site_view(s, tenant).count == 40
    assert "APP-7" in _keys(db, tenant, "marker7")


def test_catching_up_for_some_items_waits_for_their_changes_not_for_later_ones(
        sqlite_url: str, index_dir: Path) -> None:
    # A refresher ranks items as of their own changes: while a burst goes on, waiting for every
    # later change too kept it idle a fifth of its time.
    db, tenant = database(sqlite_url)
    with db.session() as s:
        first = upsert_item(s, tenant, doc("APP-1", "Widget crashes", "marker failure")).id
    assert catch_up(db)  # this process writes the shard: everything so far is indexed
    shard = local_shards(Settings.from_env())[0]
    lock = ShardLock(Settings.from_env().index_dir, shard.name)
    assert lock.acquire()  # now another process writes it, and is not writing
    try:
        with db.session() as s:
            later = upsert_item(s, tenant, doc("APP-2", "Widget crashes again", "marker")).id
        started = time.monotonic()
        assert catch_up(db, tenant, timeout=5, items=[first])
        assert time.monotonic() - started < 1
        assert not catch_up(db, tenant, timeout=0.3, items=[first, later])
        assert not catch_up(db, tenant, timeout=0.3)  # the site as it is now
    finally:
        lock.release()


def test_an_idle_indexer_woken_after_a_commit_indexes_it_before_its_next_look(
        sqlite_url: str, index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker's drain wakes its process's indexer once a batch commits: a changed item's refresh
    # waits for its change to be indexed, and a poll interval's wait was added to each one.
    from plugin.search import indexer

    monkeypatch.setattr(indexer, "IDLE_SECONDS", 60.0)  # its next look would come far too late
    db, tenant = database(sqlite_url)
    with db.session() as s:
        upsert_item(s, tenant, doc("APP-1", "Widget crashes", "marker failure"))
    stop = threading.Event()
    threads = indexer.start(db, Settings.from_env(), stop)
    try:
        def through() -> int | None:
            with db.session() as s:
                return indexed_through(s, tenant)

        assert wait_until(lambda: through() is not None, 30, interval=0.05)  # then it idles
        time.sleep(0.2)
        with db.session() as s:
            upsert_item(s, tenant, doc("APP-2", "Widget crashes again", "marker7 failure"))
        with db.session() as s:
            changed = current_seq(s, tenant)
        indexer.wake()
        assert wait_until(lambda: (through() or 0) >= changed, 20, interval=0.05)
        assert "APP-2" in _keys(db, tenant, "marker7")
    finally:
        indexer.halt(stop)
        for thread in threads:
            thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
