"""Small builders for matching tests: a database with a tenant and concise ItemDocs."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connect.db import Database
from plugin.content.model import ContributionDoc, ItemDoc
from tests.conftest import install_tenant

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def database(url: str) -> tuple[Database, int]:
    """A database with every table and one Jira tenant."""
    import plugin.models  # noqa: F401

    db = Database(url)
    db.create_all()
    return db, install_tenant(db, "jira").tenant_id


def doc(key: str, title: str, text: str = "", days: int = 0, people: dict[str, str] | None = None,
        links: list[str] | None = None, resolution: str | None = None) -> ItemDoc:
    """An issue with the given people ({account: role})."""
    at = T0 + timedelta(days=days)
    contributions = [ContributionDoc(a, r, at, a.title()) for a, r in (people or {}).items()]
    return ItemDoc(source="jira", key=key, kind="issue", title=title, text=text, project="APP",
                   space=None, labels=[], components=[], status="Open", resolution=resolution,
                   created=at, updated=at, url=f"https://site.test/browse/{key}", links=links or [],
                   contributions=contributions)


def store(db: Database, tenant_id: int, *docs: ItemDoc) -> None:
    """Store the docs in one committed transaction, then let the search engine catch up."""
    from plugin import search
    from plugin.matching.store import upsert_items

    with db.session() as session:
        upsert_items(session, tenant_id, list(docs))
    assert search.catch_up(db)


def indexed(db: Database) -> None:
    """Bring the search engine level with what the database committed (as the indexer would)."""
    from plugin import search

    assert search.catch_up(db)
