"""The best matches' norms are recomputed only when the site changed since they were computed."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from plugin.config import Settings
from plugin.matching import candidates, ranking
from plugin.matching.query import as_target
from plugin.matching.service import suggest_reuse
from plugin.search import bind, site, site_view
from plugin.search.shard import close_all
from tests.matching.helpers import database, doc, store

DOCS = [doc("APP-1", "Disk full on the datanode", "the datanode disk is full after restart"),
        doc("APP-2", "Datanode restart loops", "restart of the datanode loops when the disk is slow"),
        doc("APP-3", "Printer jam", "the printer jams on every page"),
        doc("APP-4", "Disk quota exceeded", "quota of the disk exceeded on the namenode")]


def _rank(db, tenant: int) -> list[tuple[int, float]]:
    with db.session() as s:
        goal = as_target(s, tenant, "datanode disk full restart")
        return ranking.rank_here(s, tenant, site_view(s, tenant), goal, 10).ranked


def test_norms_computed_on_the_site_as_it_is_are_used_as_they_are(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, tenant = database(f"sqlite:///{tmp_path / 'inflow.db'}")
    bind(db, dataclasses.replace(Settings.from_env(), index_dir=tmp_path / "index"))
    read: list[int] = []
    reading = candidates.vectors
    monkeypatch.setattr(candidates, "vectors", lambda s, t, ids: read.extend(ids) or reading(s, t, ids))
    try:
        store(db, tenant, *DOCS)  # one indexing step: every norm is computed on the site as it is
        as_indexed = _rank(db, tenant)
        assert as_indexed and read == []
        hits = site.SiteView._hits
        monkeypatch.setattr(site.SiteView, "_hits", lambda self, found: [
            h._replace(basis=-1) for h in hits(self, found)])  # as if the site had changed since
        recomputed = _rank(db, tenant)
        assert [i for i, _ in recomputed] == [i for i, _ in as_indexed]  # recomputing changes nothing
        assert [s for _, s in recomputed] == pytest.approx([s for _, s in as_indexed])
        assert read
        monkeypatch.setattr(site.SiteView, "_hits", hits)
        read.clear()
        store(db, tenant, doc("APP-5", "Fan noise", "the fan is loud"))  # the site grew
        assert _rank(db, tenant) and read  # the older items' norms are recomputed
    finally:
        close_all()
        db.dispose()


def _bases(db, tenant: int) -> dict[int, int]:
    """The site size each indexed item's norm was computed at, by item id."""
    import tantivy

    with db.session() as s:
        view = site_view(s, tenant)
        found = view.searcher.search(tantivy.Query.all_query(), 1000).hits
        addresses = [address for _, address in found]
        ids = view.searcher.fast_field_values("id", addresses)
        return dict(zip(ids, view.searcher.fast_field_values("basis", addresses), strict=True))


def test_older_norms_are_computed_again_once_the_site_has_grown_fourfold(tmp_path: Path) -> None:
    db, tenant = database(f"sqlite:///{tmp_path / 'inflow.db'}")
    bind(db, dataclasses.replace(Settings.from_env(), index_dir=tmp_path / "index"))
    topic = [doc(f"APP-{n}", f"Disk topic {n}", f"the disk of node {n} is full") for n in range(14)]
    try:
        store(db, tenant, *topic[:2])
        first = _bases(db, tenant)
        assert set(first.values()) == {2}
        for end in (7, 13):  # the indexer looks at the site as it was before each step's writes
            store(db, tenant, *topic[len(_bases(db, tenant)):end])
            assert {i: b for i, b in _bases(db, tenant).items() if i in first} == first  # < 4x: they stand
        store(db, tenant, topic[13])  # the site it now looks at has 13 items: over 4x the first norms'
        bases = _bases(db, tenant)
        assert len(bases) == 14 and all(bases[i] == 13 for i in first)
    finally:
        close_all()
        db.dispose()


def _writes_recorded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids of the items the indexer writes from now on, in order."""
    from plugin.search import indexer

    written: list[int] = []
    writing = indexer.Indexer._write
    monkeypatch.setattr(indexer.Indexer, "_write", lambda self, c, w, view, t, rows, **kw: (
        written.extend(row[0] for row in rows), writing(self, c, w, view, t, rows, **kw))[1])
    return written


def test_a_step_writes_only_what_changed_since_the_last_one(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plugin.matching.store import upsert_item

    db, tenant = database(database_url)
    bind(db, dataclasses.replace(Settings.from_env(), index_dir=tmp_path / "index"))
    written = _writes_recorded(monkeypatch)
    try:
        store(db, tenant, *DOCS)
        for changed in ("APP-2", "APP-4"):  # a webhook's update each: the one item, not the last one's too
            written.clear()
            with db.session() as s:
                item = upsert_item(s, tenant, doc(changed, "Changed title", "changed text"))
                item_id = item.id
            store(db, tenant)
            assert written == [item_id]
    finally:
        close_all()
        db.dispose()


def test_items_stored_while_a_step_reads_are_written_once_by_the_next_step(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plugin.matching.store import upsert_item
    from plugin.search import indexer

    db, tenant = database(database_url)
    bind(db, dataclasses.replace(Settings.from_env(), index_dir=tmp_path / "index"))
    written = _writes_recorded(monkeypatch)
    looking = indexer.pending
    late = [doc("APP-8", "Late arrival", "stored while the step reads")]

    def pending_then_a_store(*args, **kwargs):  # a backfill page commits right after the step looked
        found = looking(*args, **kwargs)
        if late:
            with db.session() as s:
                upsert_item(s, tenant, late.pop())
        return found

    monkeypatch.setattr(indexer, "pending", pending_then_a_store)
    try:
        store(db, tenant, *DOCS)
        assert not late and len(written) == len(set(written)) == len(DOCS) + 1
        with db.session() as s:
            assert {r.key for r in suggest_reuse(s, tenant, "late arrival", limit=5)} == {"APP-8"}
    finally:
        close_all()
        db.dispose()
