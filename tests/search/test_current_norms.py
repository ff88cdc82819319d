"""The best matches' norms are recomputed only when the site changed since they were computed."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from plugin.config import Settings
from plugin.matching import candidates, ranking
from plugin.matching.query import as_target
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
