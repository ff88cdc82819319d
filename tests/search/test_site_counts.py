"""A site's term counts are exact: read from the dictionary when nothing of the site awaits a
merge, counted from postings when a replaced version still does."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from plugin.config import Settings
from plugin.matching.store import upsert_item
from plugin.matching.text import tokens
from plugin.search import bind, catch_up, site, site_view
from plugin.search.shard import close_all
from tests.matching.helpers import database, doc


def _view_counts(db, tenant: int) -> tuple[bool, float, float]:
    with db.session() as s:
        view = site_view(s, tenant)
        return view.settled, view.df(tokens("disk")[0]), view.df(tokens("printer")[0])


def test_counts_are_exact_with_and_without_versions_awaiting_a_merge(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, tenant = database(f"sqlite:///{tmp_path / 'inflow.db'}")
    bind(db, dataclasses.replace(Settings.from_env(), index_dir=tmp_path / "index"))
    try:
        with db.session() as s:
            upsert_item(s, tenant, doc("APP-1", "disk full", "the disk is full"))
            upsert_item(s, tenant, doc("APP-2", "printer jam", "the printer"))
        assert catch_up(db)
        asked: list[str] = []
        counting = site.COUNTS.current
        monkeypatch.setattr(site.COUNTS, "current", lambda *a, **k: asked.append(a[3]) or counting(*a, **k))
        assert _view_counts(db, tenant) == (True, 1.0, 1.0)
        assert asked == []  # read from the dictionary: no postings counted
        with db.session() as s:  # APP-2 now says disk: its old version (printer) awaits a merge
            upsert_item(s, tenant, doc("APP-2", "disk again", "the disk"))
        assert catch_up(db)
        settled, disk, printer = _view_counts(db, tenant)
        assert (settled, disk, printer) == (False, 2.0, 0.0)
        assert asked  # counted from postings
    finally:
        close_all()
        db.dispose()
