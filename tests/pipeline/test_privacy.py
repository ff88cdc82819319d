"""Personal data reporting: batches of 90, erasure on `closed`, the host's Cycle-Period honoured."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, or_, select

from connect.db import utcnow
from connect.host_client import HostClient
from connect.models import Tenant
from jobs import pipeline as jobs
from plugin import hooks, search
from plugin.matching import precompute
from plugin.matching.store import remember_people
from plugin.models.content import Contribution, Erasure, Person, StoredSuggestion
from plugin.models.pipeline import PrivacyCycle
from plugin.models.social import Kudos, Question
from plugin.pipeline import backfill, events
from sandbox.site import data
from tests.conftest import install_tenant
from tests.pipeline.conftest import Site
from tests.pipeline.test_events import store_events
from tests.sandbox_site import install_into

ERASED = "chirino"  # an ActiveMQ committer, present on many issues


def traces(site: Site, account_id: str) -> int:
    with site.db.session() as session:
        return sum(
            session.scalar(select(func.count()).select_from(model).where(condition))
            for model, condition in [
                (Contribution, Contribution.account_id == account_id),
                (Person, Person.account_id == account_id),
                (
                    Kudos,
                    or_(Kudos.from_account_id == account_id, Kudos.to_account_id == account_id),
                ),
                (Question, Question.expert_account_id == account_id),
            ]
        )


def backfilled(site: Site, issues: int) -> Site:
    """The site with its first ActiveMQ issues learned by a backfill."""
    site.host.load_jira_dataset("apache-activemq", limit=issues)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    return site


def test_closed_accounts_are_erased_everywhere_and_the_next_report_waits_for_the_cycle_period(
    sqlite_url: str, make_site: Any
) -> None:
    site = backfilled(make_site(sqlite_url), 400)
    with site.db.session() as session:
        session.add(
            Kudos(
                tenant_id=site.tenant_id,
                source="jira",
                item_key="AMQ-1",
                from_account_id="someone",
                to_account_id=ERASED,
                kind="thanks",
            )
        )
        session.add(
            Question(
                tenant_id=site.tenant_id,
                source="jira",
                item_key="AMQ-1",
                asker_account_id="someone",
                expert_account_id=ERASED,
                text="?",
            )
        )
        people = session.scalar(
            select(func.count(Person.id)).where(Person.tenant_id == site.tenant_id)
        )
        renamed = session.scalar(select(Person).where(Person.account_id != ERASED).limit(1))
        renamed_id, real_name, renamed.display_name = (
            renamed.account_id,
            renamed.display_name,
            "Old",
        )
    assert people > 90 and traces(site, ERASED) > 2
    site.host.set_account_status(ERASED, "closed")
    site.host.set_account_status(renamed_id, "updated")

    before = utcnow()
    assert jobs.run_privacy_reporting() == 1  # no Redis: the tenant's report runs inline
    assert traces(site, ERASED) == 0
    reports = site.host.calls_to("/app/report-accounts/", "POST")
    assert all(len(call.json["accounts"]) <= 90 for call in reports)
    # everyone stored, and "someone", who only asked and thanked
    assert sum(len(call.json["accounts"]) for call in reports) == people + 1
    with site.db.session() as session:
        cycle = session.scalar(select(PrivacyCycle).where(PrivacyCycle.tenant_id == site.tenant_id))
    assert cycle.next_run_at >= before + timedelta(hours=site.host.cycle_period_hours)
    assert cycle.accounts_closed == 1
    with site.db.session() as session:  # `updated`: the profile was read again
        assert (
            session.scalar(select(Person.display_name).where(Person.account_id == renamed_id))
            == real_name
        )

    assert jobs.run_privacy_reporting() == 0  # not due again before the Cycle-Period
    assert len(site.host.calls_to("/app/report-accounts/", "POST")) == len(reports)


def test_an_erasure_request_removes_the_person(sqlite_url: str, make_site: Any) -> None:
    site = backfilled(make_site(sqlite_url), 100)
    assert traces(site, ERASED) > 0
    jobs.erase_person(site.tenant_id, ERASED)
    assert traces(site, ERASED) == 0


def test_a_refresh_racing_an_erasure_does_not_store_the_erased_person_again(
    database_url: str, make_site: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = backfilled(make_site(database_url), 100)
    assert search.catch_up(site.db)
    with site.db.session() as session:  # an item they are suggested on
        item_id = next(item for item in session.scalars(select(Contribution.item_id).where(
            Contribution.tenant_id == site.tenant_id, Contribution.account_id == ERASED))
            if ERASED in named_on(session, site.tenant_id, item))
    computed = precompute.suggest_experts

    def erased_meanwhile(*args: Any, **kwargs: Any) -> list[Any]:
        found = computed(*args, **kwargs)  # ranked before the erasure commits
        assert any(e.account_id == ERASED for e in found)
        jobs.erase_person(site.tenant_id, ERASED)
        return found

    monkeypatch.setattr(precompute, "suggest_experts", erased_meanwhile)
    with site.db.session() as session:
        precompute.refresh_suggestions(session, site.tenant_id, item_id)
    with site.db.session() as session:
        stored = session.scalar(select(StoredSuggestion.payload).where(
            StoredSuggestion.item_id == item_id, StoredSuggestion.kind == "experts"))
    assert stored and ERASED not in {e["account_id"] for e in stored}


def named_on(session: Any, tenant_id: int, item_id: int) -> set[str]:
    """Who the item's stored experts name, once refreshed."""
    precompute.refresh_suggestions(session, tenant_id, item_id)
    return {e.account_id for e in precompute.stored_suggestions(session, tenant_id, item_id)["experts"]}


def test_a_product_installed_after_an_erasure_does_not_learn_the_erased_person(
    sqlite_url: str, make_site: Any
) -> None:
    site = backfilled(make_site(sqlite_url), 20)
    author = data.confluence_pages()[0]["authorId"]  # erases from Jira's personal page
    jobs.erase_person(site.tenant_id, author)
    wiki = install_into(site.host, site.db, "confluence")  # the site adds Confluence later
    site.host.load_confluence_dataset(limit=60)
    assert backfill.run_backfill(site.db, wiki.tenant_id, jobs.client_for)
    with site.db.session() as session:
        learned = set(session.scalars(select(Contribution.account_id).where(
            Contribution.tenant_id == wiki.tenant_id)))
        named = session.scalar(select(func.count()).select_from(Person).where(
            Person.account_id == author))
    assert learned and author not in learned and named == 0


def test_an_erasure_reaches_a_second_installation_of_the_same_product(
    sqlite_url: str, make_site: Any
) -> None:
    site = backfilled(make_site(sqlite_url), 20)
    # The site's Forge installation, beside the Connect one it did not adopt.
    forge = install_tenant(site.db, "jira", base_url=site.host.base_url("jira"))
    with site.db.session() as session:
        remember_people(session, forge.tenant_id, [(ERASED, "Hiram Chirino")])
    jobs.erase_person(site.tenant_id, ERASED)
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Person).where(
            Person.account_id == ERASED)) == 0
        assert session.scalar(select(Erasure.tenant_id).where(
            Erasure.tenant_id == forge.tenant_id, Erasure.account_id == ERASED))


def test_an_event_stored_before_the_new_products_backfill_credits_no_erased_person(
    sqlite_url: str, make_site: Any
) -> None:
    site = backfilled(make_site(sqlite_url), 20)
    page = data.confluence_pages()[0]
    jobs.erase_person(site.tenant_id, page["authorId"])
    wiki = install_into(site.host, site.db, "confluence")
    site.host.load_confluence_dataset(limit=60)
    hooks.start_backfill(site.app, wiki.tenant_id)  # as the install asks; the backfill waits
    event = ("page_updated", {"page": {"id": int(page["id"]), "contentType": "page"}}, 1_700_000_000_000)
    [event_id] = store_events(site, wiki.tenant_id, "confluence", [event])
    with site.db.session() as session:
        client = HostClient.for_tenant(session.get(Tenant, wiki.tenant_id), site.host.app_key)
        events.process_event(session, event_id, lambda tenant: client)
    with site.db.session() as session:
        credited = set(session.scalars(select(Contribution.account_id).where(
            Contribution.tenant_id == wiki.tenant_id)))
    assert credited and page["authorId"] not in credited
