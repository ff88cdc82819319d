"""Two shards on loopback, as two machines would hold them: one database and Redis, two index directories.

Each machine runs `inflow worker` with its own INFLOW_INDEX_DIR and INFLOW_SHARDS. Every site's
changes reach its own shard (the shard's indexer follows the shared database); a machine ranks
a site of the other shard by asking that machine's workers; a site moves by being rebuilt there.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tantivy

from plugin.cli import main
from plugin.matching.service import suggest_experts, suggest_reuse
from plugin.matching.store import upsert_items
from plugin.models.content import IndexProgress, IndexState
from plugin.search.schema import SCHEMA, register
from tests.conftest import install_tenant
from tests.matching.helpers import database, doc
from tests.runtime.helpers import INFLOW, ROOT, base_env


def _worker(name: str, shard: str, index: Path, url: str, redis_url: str, log: Path) -> subprocess.Popen:
    env = base_env(DATABASE_URL=url, REDIS_URL=redis_url, INFLOW_INDEX_DIR=str(index), INFLOW_SHARDS=shard)
    with log.open("ab") as out:
        return subprocess.Popen([*INFLOW, "worker", "--name", name, "--schedule", "none"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (a warm shut-down finishes the current job), SIGKILL if it takes too long."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _settled(db, tenant: int, shard: str, timeout: float = 60) -> None:
    """Wait until the site's shard has indexed everything it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as s:
            progress, state = s.get(IndexProgress, tenant), s.get(IndexState, tenant)
            if progress and progress.shard == shard and progress.index_id and state and progress.seq >= state.seq:
                return
        time.sleep(0.05)
    raise AssertionError(f"tenant {tenant} not indexed in shard {shard}")


def _documents(index: Path, shard: str, tenant: int) -> int:
    """Current documents of the site in a shard's directory, read as another process would."""
    searcher = register(tantivy.Index.open(str(index / shard))).searcher()
    return searcher.search(tantivy.Query.term_query(SCHEMA, "tenant", tenant), 1, count=True).count


@pytest.fixture
def machines(tmp_path: Path, sqlite_url: str, redis_url: str,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """Machine a (shard 0) and machine b (shard 1); this process is a web process of machine a."""
    db, first = database(sqlite_url)
    second = install_tenant(db).tenant_id
    dirs = {"a": tmp_path / "a", "b": tmp_path / "b"}
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("INFLOW_INDEX_DIR", str(dirs["a"]))
    monkeypatch.setenv("INFLOW_SHARDS", "0")
    log = tmp_path / "workers.log"
    procs = {"a": _worker("a", "0", dirs["a"], sqlite_url, redis_url, log),
             "b": _worker("b", "1", dirs["b"], sqlite_url, redis_url, log)}
    try:
        yield {"db": db, "sites": (first, second), "dirs": dirs, "procs": procs, "url": sqlite_url,
               "redis": redis_url, "log": log}
    finally:
        for proc in procs.values():
            _stop(proc)
        db.dispose()


def _keys(db, tenant: int, text: str) -> set[str]:
    with db.session() as s:
        return {r.key for r in suggest_reuse(s, tenant, text, limit=10)}


def test_each_site_is_indexed_and_ranked_by_its_own_shard_and_moves_by_rebuild(machines: dict) -> None:
    db, (first, second), dirs = machines["db"], machines["sites"], machines["dirs"]
    assert main(["reindex", "--tenant", str(second), "--shard", "1"]) == 0  # b's worker builds it
    with db.session() as s:
        upsert_items(s, first, [doc(f"APP-{n}", f"Kafka consumer lag {n}", people={"ann": "assignee"})
                                for n in range(4)])
        upsert_items(s, second, [doc(f"OPS-{n}", f"Kafka consumer lag {n}", people={"bob": "assignee"})
                                 for n in range(3)])
    _settled(db, first, "0")
    _settled(db, second, "1")
    assert _documents(dirs["a"], "0", first) == 4 and _documents(dirs["a"], "0", second) == 0
    assert _documents(dirs["b"], "1", second) == 3 and _documents(dirs["b"], "1", first) == 0
    # This process holds shard 0 only: the second site is ranked by machine b's worker.
    assert _keys(db, first, "kafka consumer lag") == {f"APP-{n}" for n in range(4)}
    assert _keys(db, second, "kafka consumer lag") == {f"OPS-{n}" for n in range(3)}
    with db.session() as s:
        assert [e.account_id for e in suggest_experts(s, second, "kafka lag", min_confidence=0)] == ["bob"]

    assert main(["reindex", "--tenant", str(first), "--shard", "1"]) == 0  # the first site moves to b
    _settled(db, first, "1")
    assert _documents(dirs["b"], "1", first) == 4
    assert _keys(db, first, "kafka consumer lag") == {f"APP-{n}" for n in range(4)}  # asked of b now
    _stop(machines["procs"]["a"])  # machine a restarts: its indexer drops the site it lost
    machines["procs"]["a"] = _worker("a", "0", dirs["a"], machines["url"], machines["redis"], machines["log"])
    deadline = time.monotonic() + 30
    while _documents(dirs["a"], "0", first) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _documents(dirs["a"], "0", first) == 0


def test_a_shard_that_does_not_answer_gives_no_ranking_in_time(machines: dict) -> None:
    db, (_, second) = machines["db"], machines["sites"]
    _stop(machines["procs"]["b"])
    assert main(["reindex", "--tenant", str(second), "--shard", "1"]) == 0
    started = time.monotonic()
    assert _keys(db, second, "kafka consumer lag") == set()
    assert time.monotonic() - started < 5
