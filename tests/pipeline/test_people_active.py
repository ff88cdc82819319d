"""Someone who left is never suggested: the host's `active` is stored wherever it shows it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update

from jobs import pipeline as jobs
from plugin.models.content import Person
from plugin.pipeline import backfill
from plugin.services.settings import is_eligible
from tests.pipeline.conftest import Site
from tests.pipeline.test_events import process_all, store_events

LEFT = "chirino"  # an ActiveMQ committer, on many issues


def active(site: Site, account_id: str) -> bool | None:
    with site.db.session() as session:
        return session.scalar(select(Person.active).where(
            Person.tenant_id == site.tenant_id, Person.account_id == account_id))


def eligible(site: Site, account_id: str) -> bool:
    with site.db.session() as session:
        return is_eligible(session, site.tenant_id, account_id, "AMQ")


def issue_of(site: Site, account_id: str) -> str:
    """An issue the account commented on, as the site serves it."""
    for key in site.host.store.issues:
        comments = site.host.issue_view(key)["fields"]["comment"]["comments"]
        if any((c.get("author") or {}).get("accountId") == account_id for c in comments):
            return key
    raise AssertionError(f"{account_id} commented on nothing")


def test_a_comment_event_after_a_deactivation_stops_suggesting_the_person(
    database_url: str, make_site: Any
) -> None:
    site = make_site(database_url)
    site.host.load_jira_dataset("apache-activemq", limit=200)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert active(site, LEFT) is True and eligible(site, LEFT)

    site.host.deactivate(LEFT)
    key = issue_of(site, LEFT)
    issue_id = site.host.issue_view(key)["id"]
    comment = {"id": "77", "author": {"accountId": "someone", "displayName": "Someone"},
               "body": "Still happens", "created": "2024-03-01T00:00:00.000+0000"}
    event = ("comment_created", {"comment": comment, "issue": {"id": issue_id, "key": key}},
             1_709_251_200_000)
    process_all(site, store_events(site, site.tenant_id, "jira", [event]))  # re-reads the issue

    assert active(site, LEFT) is False
    assert not eligible(site, LEFT)
    assert eligible(site, "someone")


def test_the_privacy_cycle_reads_a_deactivation(sqlite_url: str, make_site: Any) -> None:
    site = make_site(sqlite_url)
    site.host.load_jira_dataset("apache-activemq", limit=100)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    site.host.deactivate(LEFT)
    site.host.set_account_status(LEFT, "updated")
    assert active(site, LEFT) is True  # nothing told Inflow yet

    assert jobs.run_privacy_reporting() == 1
    assert active(site, LEFT) is False and not eligible(site, LEFT)


def test_the_privacy_cycle_learns_who_left_among_people_stored_without_it(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    site.host.load_jira_dataset("apache-activemq", limit=100)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    with site.db.session() as session:  # as stored before Inflow kept `active`
        session.execute(update(Person).where(Person.tenant_id == site.tenant_id).values(active=None))
        unknown = session.scalar(select(func.count()).select_from(Person).where(
            Person.tenant_id == site.tenant_id))
    site.host.deactivate(LEFT)
    assert active(site, LEFT) is None and eligible(site, LEFT)

    assert jobs.run_privacy_reporting() == 1
    assert active(site, LEFT) is False and not eligible(site, LEFT)
    with site.db.session() as session:
        still = session.scalar(select(func.count()).select_from(Person).where(
            Person.tenant_id == site.tenant_id, Person.active.is_(None)))
        told = session.scalar(select(func.count()).select_from(Person).where(
            Person.tenant_id == site.tenant_id, Person.active.is_(True)))
    assert still == 0 and told == unknown - 1
    assert len(site.host.calls_to("/rest/api/3/user/bulk", "GET")) == -(-unknown // 100)


def test_a_payload_without_active_keeps_what_is_stored(sqlite_url: str, make_site: Any) -> None:
    from plugin.content.normalize import jira_issue_to_doc
    from plugin.matching.store import upsert_item
    from tests.pipeline.conftest import v2_issue

    site = make_site(sqlite_url)
    left = {"accountId": "dana", "displayName": "Dana", "active": False}
    issue = v2_issue("AMQ-1", 1001, "Broker drops messages", "2024-03-01T00:00:00.000+0000",
                     assignee=left)
    with site.db.session() as session:
        doc = jira_issue_to_doc(issue, site.host.base_url("jira"))
        assert {c.active for c in doc.contributions if c.account_id == "dana"} == {False}
        upsert_item(session, site.tenant_id, doc)
    assert active(site, "dana") is False

    unsaid = {"accountId": "dana", "displayName": "Dana Renamed"}  # Server-era data: no `active`
    issue = v2_issue("AMQ-2", 1002, "Typo", "2024-03-02T00:00:00.000+0000", assignee=unsaid)
    with site.db.session() as session:
        upsert_item(session, site.tenant_id, jira_issue_to_doc(issue, site.host.base_url("jira")))
        assert session.scalar(select(Person.display_name).where(Person.account_id == "dana")) == "Dana Renamed"
    assert active(site, "dana") is False

    back = {"accountId": "dana", "displayName": "Dana", "active": True}  # reactivated
    issue = v2_issue("AMQ-3", 1003, "Leak", "2024-03-03T00:00:00.000+0000", assignee=back)
    with site.db.session() as session:
        upsert_item(session, site.tenant_id, jira_issue_to_doc(issue, site.host.base_url("jira")))
    assert active(site, "dana") is True and eligible(site, "dana")


@pytest.mark.parametrize("product", ["jira", "confluence"])
def test_the_privacy_cycle_asks_who_left_since_they_last_appeared(
    sqlite_url: str, make_site: Any, product: str
) -> None:
    site = make_site(sqlite_url, product)
    if product == "jira":
        site.host.load_jira_dataset("apache-activemq", limit=100)
    else:
        site.host.load_confluence_dataset(limit=100)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    with site.db.session() as session:
        people = list(session.scalars(select(Person.account_id).where(
            Person.tenant_id == site.tenant_id, Person.active.is_(True)).order_by(Person.account_id)))
    gone = people[0]
    site.host.deactivate(gone)  # no event names them again, nor does the reporting API
    assert active(site, gone) is True

    assert jobs.run_privacy_reporting() == 1
    assert active(site, gone) is False and not eligible(site, gone)
    assert all(active(site, other) is True for other in people[1:])
