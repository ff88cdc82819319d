"""The store and the search engine on both backends: changes reach every process once indexed."""
from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.content.model import ItemDoc
from plugin.matching.precompute import refresh_suggestions, stored_suggestions
from plugin.matching.service import suggest_experts, suggest_reuse
from plugin.matching.store import (
    delete_item,
    erase_person,
    get_item,
    set_feedback_counts,
    store_items,
    upsert_item,
    upsert_items,
)
from plugin.models.content import Contribution, Item, Person
from tests.matching.helpers import database, doc, indexed


def test_upsert_updates_item_contributions_and_people(database_url: str) -> None:
    db, tenant = database(database_url)
    with db.session() as s:
        upsert_item(s, tenant, doc("APP-1", "Login fails", "after upgrade", people={"ann": "reporter"}))
    with db.session() as s:
        upsert_item(s, tenant, doc("APP-1", "Login fails on SSO", "after upgrade",
                                   people={"ann": "reporter", "bob": "assignee"}))
    with db.session() as s:
        item = get_item(s, tenant, "jira", "APP-1")
        assert item is not None and item.title == "Login fails on SSO"
        roles = set(s.execute(select(Contribution.account_id, Contribution.role)
                              .where(Contribution.item_id == item.id)).all())
        assert roles == {("ann", "reporter"), ("bob", "assignee")}
        assert set(s.scalars(select(Person.account_id).where(Person.tenant_id == tenant))) == {"ann", "bob"}
    db.dispose()


def test_store_items_gives_ids_in_order_and_upsert_items_the_same_items(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    with db.session() as s:
        ids = store_items(s, tenant, [doc("APP-1", "Login fails"), doc("APP-2", "Disk full"),
                                      doc("APP-1", "Login fails on SSO")])
    with db.session() as s:
        assert [get_item(s, tenant, "jira", k).id for k in ("APP-1", "APP-2")] == ids
        assert s.get(Item, ids[0]).title == "Login fails on SSO"
        items = upsert_items(s, tenant, [doc("APP-2", "Disk full again"), doc("APP-3", "New")])
        assert items[0].id == ids[1] and items[0].title == "Disk full again"
        assert store_items(s, tenant, []) == []
    db.dispose()


def test_update_and_delete_by_one_process_are_seen_by_another_process(database_url: str) -> None:
    writer, tenant = database(database_url)
    from connect.db import Database
    from plugin.search.shard import close_all
    reader = Database(database_url)
    with writer.session() as s:
        upsert_item(s, tenant, doc("APP-1", "Kafka consumer lag grows", "rebalance storm"))
        upsert_item(s, tenant, doc("APP-2", "Printer offline", "toner"))
    indexed(writer)
    with reader.session() as s:
        assert [r.key for r in suggest_reuse(s, tenant, "kafka consumer lag")] == ["APP-1"]
    with writer.session() as s:
        upsert_item(s, tenant, doc("APP-3", "Kafka consumer lag after deploy", "rebalance"))
        upsert_item(s, tenant, doc("APP-2", "Printer offline and kafka lag", "toner"))
    indexed(writer)
    with reader.session() as s:
        assert {r.key for r in suggest_reuse(s, tenant, "kafka consumer lag")} == {"APP-1", "APP-2", "APP-3"}
    with writer.session() as s:
        assert delete_item(s, tenant, "jira", "APP-1") is True
        assert delete_item(s, tenant, "jira", "APP-1") is False
    indexed(writer)
    close_all()  # as a process started now: it opens the index the indexer left, nothing to rebuild
    with reader.session() as s:
        assert {r.key for r in suggest_reuse(s, tenant, "kafka consumer lag")} == {"APP-2", "APP-3"}
    reader.dispose()
    writer.dispose()


def test_helpful_feedback_raises_an_item(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    with db.session() as s:
        first = upsert_item(s, tenant, doc("APP-1", "Disk full on build agent", "clean workspace"))
        upsert_item(s, tenant, doc("APP-2", "Disk full on build agent", "clean workspace"))
        first_id = first.id
    indexed(db)
    with db.session() as s:
        before = [r.key for r in suggest_reuse(s, tenant, "disk full build agent")]
        loser = get_item(s, tenant, "jira", before[1])
        set_feedback_counts(s, tenant, loser.id, helpful=3, not_relevant=0)
    indexed(db)
    with db.session() as s:
        assert suggest_reuse(s, tenant, "disk full build agent")[0].key == before[1]
    assert first_id


def test_erase_person_removes_contributions_person_and_their_stored_suggestions(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    with db.session() as s:
        upsert_item(s, tenant, doc("APP-1", "Cache eviction bug", people={"eve": "assignee", "bob": "reporter"}))
        target = upsert_item(s, tenant, doc("APP-2", "Cache eviction bug again"))
    indexed(db)
    with db.session() as s:
        refresh_suggestions(s, tenant, target.id)
        stored = stored_suggestions(s, tenant, target.id)
        assert stored and [e.account_id for e in stored["experts"]] == ["eve", "bob"]
        assert stored["reuse"][0].key == "APP-1"
        erase_person(s, tenant, "eve")
    indexed(db)
    with db.session() as s:
        assert s.scalars(select(Contribution).where(Contribution.account_id == "eve")).all() == []
        assert s.scalars(select(Person).where(Person.account_id == "eve")).all() == []
        assert "eve" not in [e.account_id for e in suggest_experts(s, tenant, "cache eviction bug", min_confidence=0.0)]
        # The others stay suggested on the items eve had worked near: only her entries went.
        stored = stored_suggestions(s, tenant, target.id)
        assert stored and [e.account_id for e in stored["experts"]] == ["bob"]


@pytest.mark.parametrize("erased", ["o_n%e", 'o\'n"e\\'])
def test_erasure_finds_the_stored_entries_of_any_account_id_and_only_theirs(
        database_url: str, erased: str) -> None:
    db, tenant = database(database_url)
    # "oXnYe" is what `o_n%e` matches as a LIKE pattern; the quote and backslash are escaped in JSON.
    people = {erased: "assignee", "oXnYe": "commenter", "bob": "reporter"}
    with db.session() as s:
        upsert_item(s, tenant, doc("APP-1", "Cache eviction bug", people=people))
        target = upsert_item(s, tenant, doc("APP-2", "Cache eviction bug again"))
    indexed(db)
    with db.session() as s:
        refresh_suggestions(s, tenant, target.id)
        erase_person(s, tenant, erased)
    with db.session() as s:
        stored = stored_suggestions(s, tenant, target.id)
    assert stored and sorted(e.account_id for e in stored["experts"]) == ["bob", "oXnYe"]


def test_erasure_and_new_contributions_reach_another_process(database_url: str) -> None:
    from datetime import datetime

    from connect.db import Database
    from plugin.matching.store import add_contribution

    writer, tenant = database(database_url)
    reader = Database(database_url)
    with writer.session() as s:
        item = upsert_item(s, tenant, doc("APP-1", "Cache eviction bug", people={"eve": "assignee"}))
        item_id = item.id
    indexed(writer)
    with reader.session() as s:
        assert [e.account_id for e in suggest_experts(s, tenant, "cache eviction")] == ["eve"]
    with writer.session() as s:
        erase_person(s, tenant, "eve")
        add_contribution(s, tenant, item_id, "sam", "answerer", datetime.now(UTC), "Sam")
    indexed(writer)
    with reader.session() as s:
        assert [e.account_id for e in suggest_experts(s, tenant, "cache eviction")] == ["sam"]
    with pytest.raises(LookupError), writer.session() as s:  # no item of that id: nothing is stored
        add_contribution(s, tenant, item_id + 1, "sam", "answerer", datetime.now(UTC), "Sam")
    with writer.session() as s:
        assert s.scalar(select(func.count()).select_from(Contribution)) == 1
    reader.dispose()
    writer.dispose()


def test_an_erasure_committed_while_a_store_runs_keeps_the_person_out(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from plugin.matching import store
    from plugin.services import privacy

    db, tenant = database(sqlite_url)
    with db.session() as s:
        upsert_item(s, tenant, doc("APP-1", "Cache eviction bug", people={"eve": "commenter"}))
    analyse = store._item_rows

    def erased_meanwhile(session: Session, tenant_id: int, docs: list[ItemDoc]) -> list[dict[str, Any]]:
        monkeypatch.setattr(store, "_item_rows", analyse)
        with db.session() as other:  # eve's erasure commits while the store analyses the texts
            privacy.erase_person(other, tenant, "eve")
        return analyse(session, tenant_id, docs)

    monkeypatch.setattr(store, "_item_rows", erased_meanwhile)
    with db.session() as s:  # the item as the host showed it before the erasure, stored after it
        store_items(s, tenant, [doc("APP-1", "Cache eviction bug again", people={"eve": "commenter"})])
    with db.session() as s:
        assert s.scalars(select(Contribution).where(Contribution.account_id == "eve")).all() == []
        assert s.scalars(select(Person).where(Person.account_id == "eve")).all() == []
    db.dispose()
