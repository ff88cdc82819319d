"""One shared shard, many sites: a site's queries and statistics never include another site's items."""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.config import Settings
from plugin.matching.service import suggest_reuse
from plugin.matching.text import tokens
from plugin.search import NotIndexed, bind, catch_up, site_view
from plugin.search.shard import close_all
from tests.conftest import install_tenant
from tests.matching.helpers import database, doc

WORDS = ["disk", "kafka", "lag", "login", "timeout", "printer", "toner", "cache", "eviction", "replica"]
sites = st.lists(st.tuples(st.sampled_from([0, 1]), st.lists(st.sampled_from(WORDS), min_size=1, max_size=5)),
                 min_size=1, max_size=10)


@settings(max_examples=20, deadline=None)
@given(items=sites, question=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
def test_a_site_sees_only_its_own_items_and_statistics(items: list[tuple[int, list[str]]],
                                                       question: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db, first = database(f"sqlite:///{Path(folder) / 'inflow.db'}")
        bind(db, dataclasses.replace(Settings.from_env(), index_dir=Path(folder) / "index"))
        tenants = [first, install_tenant(db).tenant_id]
        owned: dict[int, set[str]] = {t: set() for t in tenants}
        with db.session() as s:
            from plugin.matching.store import upsert_item
            for n, (site, words) in enumerate(items):
                key = f"APP-{n}"
                upsert_item(s, tenants[site], doc(key, " ".join(words), " ".join(reversed(words))))
                owned[tenants[site]].add(key)
        assert catch_up(db)
        for tenant in tenants:
            with db.session() as s:
                found = {r.key for r in suggest_reuse(s, tenant, " ".join(question), limit=50)}
                assert found <= owned[tenant]
                try:
                    view = site_view(s, tenant)
                except NotIndexed:  # a site with no items has nothing indexed
                    assert not owned[tenant]
                    continue
                assert view.count == len(owned[tenant])
                for word in WORDS:  # each site's document frequency counts its own items only
                    mine = sum(word in words for site, words in items if tenants[site] == tenant)
                    assert view.df(tokens(word)[0]) == mine
        close_all()
        db.dispose()
