"""How the indexer cuts a site's changes into steps: whole sequences, a bounded batch, and norms
that count the items written before them in the same step."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin.config import Settings
from plugin.matching.store import upsert_items
from plugin.search import indexer
from plugin.search.indexer import Indexer, ShardLock, local_shards
from tests.matching.helpers import database, doc
from tests.search.test_current_norms import _bases


@pytest.fixture
def steps(sqlite_url: str, index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """A database with one tenant and the indexer of its shard, reading 4 items per chunk."""
    monkeypatch.setattr(indexer, "READ_CHUNK", 4)
    db, tenant = database(sqlite_url)
    settings = Settings.from_env()
    shard = local_shards(settings)[0]
    lock = ShardLock(settings.index_dir, shard.name)
    assert lock.acquire()
    writer = Indexer(db, shard, lock)
    yield db, tenant, writer
    writer.close()
    db.dispose()


def _pages(db, tenant: int, pages: int, size: int) -> None:  # noqa: ANN001
    """Store `pages` pages of `size` items, one change sequence each (as a backfill does)."""
    for page in range(pages):
        with db.session() as s:
            upsert_items(s, tenant, [doc(f"APP-{page * size + n}", f"Widget {page} part {n}",
                                         f"marker{page} piece{n} fails") for n in range(size)])


def test_a_step_past_its_batch_stops_at_the_end_of_the_sequence_under_way(
        steps: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    db, tenant, writer = steps
    monkeypatch.setattr(indexer, "TENANT_BATCH", 4)
    _pages(db, tenant, pages=5, size=3)  # chunks of 4 start inside a page three times in four
    assert [writer.step(), writer.step(), writer.step()] == [6, 6, 3]
    assert writer.step() == 0 and len(_bases(db, tenant)) == 15


def test_a_steps_norms_count_the_items_it_wrote_before_them(steps: tuple) -> None:
    db, tenant, writer = steps
    _pages(db, tenant, pages=1, size=10)
    assert writer.step() == 10
    bases = _bases(db, tenant)
    assert [bases[i] for i in sorted(bases)] == [4, 4, 4, 4, 8, 8, 8, 8, 10, 10]  # a chunk of 4 at a time
