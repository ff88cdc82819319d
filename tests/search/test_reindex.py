"""`inflow reindex`: a site (or every site) indexed anew from the database, and moved between shards."""
from __future__ import annotations

import pytest

from plugin.cli import main
from plugin.matching.store import upsert_items
from plugin.models.content import IndexProgress
from plugin.search import catch_up, site_view
from tests.conftest import install_tenant
from tests.matching.helpers import database, doc


def _count(db, tenant: int) -> float:
    with db.session() as s:
        return site_view(s, tenant).count


def test_reindex_rebuilds_one_site_or_all_from_the_database(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    db, first = database(sqlite_url)
    second = install_tenant(db).tenant_id
    with db.session() as s:
        upsert_items(s, first, [doc(f"APP-{n}", f"Widget {n} crashes") for n in range(5)])
        upsert_items(s, second, [doc(f"OPS-{n}", f"Queue {n} stalls") for n in range(3)])
    assert catch_up(db)
    with db.session() as s:
        before = {t: s.get(IndexProgress, t).seq for t in (first, second)}
    assert main(["reindex", "--tenant", str(first)]) == 0
    assert "reindexed 1 site(s)" in capsys.readouterr().out
    assert _count(db, first) == 5 and _count(db, second) == 3
    assert main(["reindex"]) == 0
    assert "reindexed 2 site(s)" in capsys.readouterr().out
    with db.session() as s:
        assert {t: s.get(IndexProgress, t).seq for t in (first, second)} == before
    assert _count(db, first) == 5 and _count(db, second) == 3


def test_reindex_refuses_what_it_cannot_do(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    database(sqlite_url)
    with pytest.raises(SystemExit, match="no tenant 99"):
        main(["reindex", "--tenant", "99"])
    with pytest.raises(SystemExit, match="give --tenant"):
        main(["reindex", "--shard", "b"])
    with pytest.raises(SystemExit, match="shard names must match"):
        main(["reindex", "--tenant", "1", "--shard", "../etc"])
