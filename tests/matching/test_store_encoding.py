"""store_items encodes JSON and timestamps itself: it must store exactly what the models' types store.

Readers (index caches, the ORM, SQL comparisons on timestamps) depend on the stored form, so each
awkward value is checked three ways: read back through the models, and as raw database text next
to the same value written through SQLAlchemy's own type processing.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from plugin.content.model import ContributionDoc, ItemDoc
from plugin.matching.store import store_items
from plugin.matching.vectors import term_vector
from plugin.models.content import Contribution, Item
from tests.matching.helpers import database

STAMPS = [
    datetime(2024, 1, 1, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(1999, 12, 31, 22, 30, 1, 5, tzinfo=timezone(timedelta(hours=-3))),
    datetime(2023, 6, 1, 12, 0, 0),  # naive: taken as UTC
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2020, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(0))),  # UTC, but not timezone.utc
]


def awkward_docs() -> list[ItemDoc]:
    """Issues with Unicode text and labels, duplicate links and timestamps in odd zones."""
    docs = []
    for n, at in enumerate(STAMPS):
        later = STAMPS[(n + 1) % len(STAMPS)]
        people = [ContributionDoc(f"acc-{n}", "reporter", at, "Zoë"),
                  ContributionDoc("acc-x", "commenter", later, None)]
        docs.append(ItemDoc(
            source="jira", key=f"APP-{n}", kind="issue", title=f"Ünïcödé XMLHttpRequest fails {n}",
            text="naïve café \"quoted\" \\ back\nslash 数据 getHTTPResponse\u2028 tab\tend",
            project="APP", space=None, labels=["é", "数", "\U0001f600", "a\"b"], components=["Core"],
            status="Open", resolution=None, created=at, updated=later,
            url=f"https://site.test/browse/APP-{n}", links=["APP-1", "APP-2", "APP-1"],
            contributions=people))
    return docs


def _raw(session: Session, table: str, columns: str, key_column: str) -> dict[str, tuple]:
    """Columns as the database holds them (text), keyed by a column."""
    casts = ", ".join(f"CAST({c} AS TEXT)" for c in columns.split())
    rows = session.execute(text(f"SELECT {key_column}, {casts} FROM {table}")).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def _same_json(stored: str, expected: str) -> bool:
    ordered = lambda value: json.loads(value, object_pairs_hook=list)  # noqa: E731
    return ordered(stored) == ordered(expected)


def test_stored_values_read_back_as_given(database_url: str) -> None:
    db, tenant = database(database_url)
    docs = awkward_docs()
    with db.session() as s:
        ids = store_items(s, tenant, docs)
    with db.session() as s:
        for item_id, d in zip(ids, docs, strict=True):
            item = s.get(Item, item_id)
            assert (item.created, item.updated) == (d.created.replace(tzinfo=d.created.tzinfo or UTC),
                                                    d.updated.replace(tzinfo=d.updated.tzinfo or UTC))
            assert item.created.tzinfo is not None and item.labels == d.labels
            assert item.links == ["APP-1", "APP-2"] and item.components == ["Core"]
            expected = term_vector(item.title, item.text, item.comments_text, ["Core", *d.labels])
            assert list(item.terms.items()) == list(expected.items())
            assert all(list(item.terms[f].items()) == list(expected[f].items()) for f in expected)
            ats = set(s.scalars(select(Contribution.at).where(Contribution.item_id == item_id)))
            assert ats == {c.at.replace(tzinfo=c.at.tzinfo or UTC) for c in d.contributions}
    db.dispose()


def test_stored_text_equals_what_the_model_types_store(database_url: str) -> None:
    db, tenant = database(database_url)
    with db.session() as s:
        ids = store_items(s, tenant, awkward_docs())
    with db.session() as s:  # the same values again, written through the models' types
        for item in s.scalars(select(Item).where(Item.id.in_(ids))):
            values = {c.key: getattr(item, c.key) for c in Item.__table__.columns if c.key != "id"}
            values["key"] = "REF-" + item.key
            ref_id = s.execute(insert(Item).values(values).returning(Item.id)).scalar_one()
            for c in s.scalars(select(Contribution).where(Contribution.item_id == item.id)):
                s.execute(insert(Contribution).values(tenant_id=tenant, item_id=ref_id,
                                                      account_id=c.account_id, role="ref-" + c.role,
                                                      at=c.at))
    with db.session() as s:
        items = _raw(s, "items", "created updated indexed_at labels components links terms", "key")
        ats = {(key, role, account): at for key, role, account, at in s.execute(text(
            "SELECT i.key, c.role, c.account_id, CAST(c.at AS TEXT) FROM contributions c "
            "JOIN items i ON i.id = c.item_id"))}
    for key in (k for k in items if not k.startswith("REF-")):
        stored, reference = items[key], items["REF-" + key]
        assert stored[:3] == reference[:3]
        assert all(_same_json(a, b) for a, b in zip(stored[3:], reference[3:], strict=True))
    assert len(ats) == 4 * len(STAMPS)
    for (key, role, account), at in ats.items():
        if not key.startswith("REF-"):
            assert ats[("REF-" + key, "ref-" + role, account)] == at
    db.dispose()


def test_json_encoding_reads_back_as_the_standard_library_wrote_it() -> None:
    from plugin.matching.vectors import to_json

    values = [{"t": {"é": 1, "数": 2}, "d": {}}, ["a\"b", "\\", "\U0001f600", "\u2028"], ["lone \ud800"], []]
    for value in values:
        assert json.loads(to_json(value)) == json.loads(json.dumps(value)) == value


def test_pages_of_rows_each_get_their_ids(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from plugin.matching import store

    monkeypatch.setattr(store, "_ROWS_PER_UPSERT", 2)
    db, tenant = database(database_url)
    docs = awkward_docs()
    with db.session() as s:
        first = store_items(s, tenant, docs[:3])
        ids = store_items(s, tenant, list(reversed(docs)))
    with db.session() as s:
        assert ids[-3:] == list(reversed(first)) and len(set(ids)) == len(docs)
        assert [s.get(Item, i).key for i in ids] == [d.key for d in reversed(docs)]
    db.dispose()
