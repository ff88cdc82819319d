"""An app's account (Automation for Jira, an integration) is never suggested or credited."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from connect.db import utcnow
from jobs import pipeline as jobs
from plugin import search
from plugin.matching.service import suggest_experts
from plugin.models.content import Contribution, Item, Person, StoredSuggestion
from plugin.pipeline import backfill
from plugin.services import accounts, feedback, recognition
from plugin.services.settings import is_eligible
from tests.pipeline.conftest import Site
from tests.pipeline.test_people_active import LEFT, issue_of


def credited(site: Site, account_id: str) -> int:
    with site.db.session() as session:
        return session.scalar(select(func.count()).select_from(Contribution).where(
            Contribution.tenant_id == site.tenant_id, Contribution.account_id == account_id)) or 0


def experts_on(site: Site, key: str) -> list[str]:
    with site.db.session() as session:
        item = session.scalar(select(Item).where(Item.tenant_id == site.tenant_id, Item.key == key))
        return [s.account_id for s in suggest_experts(session, site.tenant_id, item, limit=10, min_confidence=0.0)]


def test_an_app_commenting_everywhere_is_not_an_expert(database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    site.host.load_jira_dataset("apache-activemq", limit=200)
    key = issue_of(site, LEFT)
    site.host.make_app(LEFT)  # as if this committer's comments came from an integration
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert search.catch_up(site.db)

    assert credited(site, LEFT) == 0
    assert LEFT not in experts_on(site, key)
    assert experts_on(site, key)  # the people on those issues still are


def busiest_author(limit: int) -> str:
    """The account that wrote or last edited the most of the first `limit` Hyperledger pages."""
    from collections import Counter

    from sandbox.site import data
    counts = Counter(a for page in data.confluence_pages()[:limit]
                     for a in (page.get("authorId"), (page.get("version") or {}).get("authorId")) if a)
    return counts.most_common(1)[0][0]


def page_of(site: Site, account_id: str) -> str:
    with site.db.session() as session:
        return session.scalar(select(Item.key).join(Contribution, Contribution.item_id == Item.id).where(
            Item.tenant_id == site.tenant_id, Contribution.account_id == account_id).limit(1))


def account_type(site: Site, account_id: str) -> str | None:
    with site.db.session() as session:
        return session.scalar(select(Person.account_type).where(
            Person.tenant_id == site.tenant_id, Person.account_id == account_id))


def test_a_confluence_app_writing_pages_is_never_credited(sqlite_url: str, make_site: Any) -> None:
    site = make_site(sqlite_url, "confluence")
    site.host.load_confluence_dataset(limit=150)
    bot = busiest_author(150)
    site.host.make_app(bot)  # Confluence's pages say only its account id; the bulk lookup says "app"
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert search.catch_up(site.db)

    assert credited(site, bot) == 0
    assert account_type(site, bot) == "app"
    with site.db.session() as session:
        people = session.scalar(select(func.count(func.distinct(Contribution.account_id))).where(
            Contribution.tenant_id == site.tenant_id)) or 0
        named = session.scalar(select(func.count()).select_from(Person).where(
            Person.tenant_id == site.tenant_id, Person.account_type == "atlassian",
            Person.display_name.is_not(None))) or 0
    assert people > 5 and named >= people  # everyone else is credited, with the name the site gave
    some_page = page_of(site, next(iter(other_authors(site, bot))))
    assert bot not in experts_on(site, some_page)


def test_a_deactivated_confluence_account_is_credited_but_never_suggested(
        sqlite_url: str, make_site: Any) -> None:
    site = make_site(sqlite_url, "confluence")
    site.host.load_confluence_dataset(limit=150)
    left = busiest_author(150)
    site.host.deactivate(left)  # the pages say only its id; the bulk lookup says accountStatus "inactive"
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert search.catch_up(site.db)

    assert credited(site, left) > 0  # what they wrote stays theirs
    with site.db.session() as session:
        assert session.scalar(select(Person.active).where(
            Person.tenant_id == site.tenant_id, Person.account_id == left)) is False
        assert not is_eligible(session, site.tenant_id, left)  # never suggested, as in Jira
        assert all(is_eligible(session, site.tenant_id, other) for other in other_authors(site, left)
                   if not site.host.store.users[other]["displayName"].endswith("(Deactivated)"))


def other_authors(site: Site, bot: str) -> set[str]:
    with site.db.session() as session:
        return set(session.scalars(select(Contribution.account_id).where(
            Contribution.tenant_id == site.tenant_id, Contribution.account_id != bot)))


def test_an_app_stored_before_it_was_known_loses_its_credit(database_url: str, make_site: Any) -> None:
    site = make_site(database_url, "confluence")
    site.host.load_confluence_dataset(limit=150)
    bot = busiest_author(150)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    with site.db.session() as session:  # as a release that did not ask left them
        session.execute(update(Person).where(Person.tenant_id == site.tenant_id).values(account_type=None))
    assert credited(site, bot) > 0
    backfill.fill_suggestions(site.db, site.tenant_id)
    page = page_of(site, bot)
    assert bot in experts_on(site, page)

    site.host.make_app(bot)
    with site.db.session() as session:
        assert accounts.learn(session, site.tenant_id, site.client(), 1000) > 0
    assert search.catch_up(site.db)

    assert credited(site, bot) == 0 and account_type(site, bot) == "app"
    assert bot not in experts_on(site, page)
    with site.db.session() as session:
        stored = session.scalars(select(StoredSuggestion.payload).where(
            StoredSuggestion.tenant_id == site.tenant_id, StoredSuggestion.kind == "experts")).all()
    assert stored and not any(e["account_id"] == bot for payload in stored for e in payload)


def test_a_page_event_re_read_does_not_credit_an_app(sqlite_url: str, make_site: Any) -> None:
    from sandbox.site import data
    from tests.pipeline.test_events import process_all, store_events

    site = make_site(sqlite_url, "confluence")
    site.host.load_confluence_dataset(limit=150)
    bot = busiest_author(150)
    site.host.make_app(bot)
    pages = [p for p in data.confluence_pages()[:150]
             if bot in (p.get("authorId"), (p.get("version") or {}).get("authorId"))][:3]
    script = [("page_updated", {"page": {"id": int(p["id"]), "contentType": "page"}}, 1_700_000_000_000 + n)
              for n, p in enumerate(pages)]
    process_all(site, store_events(site, site.tenant_id, "confluence", script))

    with site.db.session() as session:
        stored = session.scalar(select(func.count()).select_from(Item).where(Item.tenant_id == site.tenant_id))
    assert stored == len(pages) == 3
    assert credited(site, bot) == 0 and account_type(site, bot) == "app"
    assert other_authors(site, bot) or all(  # a page only the app touched has no one to credit
        {p.get("authorId"), (p.get("version") or {}).get("authorId")} == {bot} for p in pages)


def test_an_account_the_site_does_not_return_is_asked_once(sqlite_url: str, make_site: Any) -> None:
    from tests.pipeline.test_events import confluence_script, process_all, store_events

    site = make_site(sqlite_url, "confluence")
    script = confluence_script(site)  # its people (erin, frank, dave) are no users the site knows

    def lookups() -> int:
        with site.host.lock:
            return sum(1 for c in site.host.calls if c.path.startswith("/wiki/rest/api/user/bulk"))

    ids = store_events(site, site.tenant_id, "confluence", script[:3])
    process_all(site, ids[:2])
    assert lookups() == 1 and account_type(site, "erin") == ""
    assert credited(site, "erin") == 1  # credited as a person: nothing said it is an app
    process_all(site, ids[2:])  # the page read again, the same people on it
    assert lookups() == 1


def test_reconciling_changed_pages_does_not_credit_an_app(sqlite_url: str, make_site: Any) -> None:
    from datetime import timedelta

    from connect.db import utcnow
    from plugin.pipeline import reconcile
    from sandbox.site import data

    site = make_site(sqlite_url, "confluence")
    site.host.load_confluence_dataset(limit=50)  # the site's users, whose pages are old
    bot = busiest_author(50)
    person = next(p["authorId"] for p in data.confluence_pages()[:50] if p.get("authorId") not in (None, bot))
    site.host.make_app(bot)
    stamp = (utcnow() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    site.host.load_confluence_pages([{
        "id": "601", "status": "current", "title": "Release notes", "spaceId": "1", "authorId": person,
        "createdAt": stamp, "version": {"number": 2, "authorId": bot, "createdAt": stamp},
        "body": {"storage": {"representation": "storage", "value": "<p>Published by the release job</p>"}}}])

    assert reconcile.reconcile_tenant(site.db, site.tenant_id, jobs.client_for) == {"changed": 1}
    assert credited(site, bot) == 0 and credited(site, person) == 1


def test_an_app_found_after_it_was_credited_leaves_the_board(sqlite_url: str, make_site: Any) -> None:
    site = make_site(sqlite_url, "confluence")
    site.host.load_confluence_dataset(limit=150)
    bot = busiest_author(150)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    with site.db.session() as session:  # as a host that did not answer at the time left them
        session.execute(update(Person).where(Person.tenant_id == site.tenant_id).values(account_type=None))
        page = session.scalar(select(Item).where(Item.tenant_id == site.tenant_id,
                                                 Item.key == page_of(site, bot)))
        reader = next(iter(other_authors(site, bot)))
        # Someone said the page helped them (crediting its authors, the app among them).
        feedback.give(session, site.tenant_id, source="confluence", key=page_of(site, reader),
                      project=None, target_item_id=page.id, verdict="helped", account_id=reader)
        week_ago = utcnow() - timedelta(days=7)
        assert bot in [row["account_id"] for row in recognition.board(session, site.tenant_id, week_ago)]

    site.host.make_app(bot)
    with site.db.session() as session:
        assert accounts.learn(session, site.tenant_id, site.client(), 1000) > 0
    with site.db.session() as session:
        assert bot not in [row["account_id"] for row in recognition.board(session, site.tenant_id, week_ago)]
        assert recognition.impact(session, site.tenant_id, bot, week_ago)["kudos_received"] == 0
