"""Weekly digests go once per person per week, on their latest issue, only if they opted in."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest

from connect.db import utcnow
from jobs import pipeline as jobs
from plugin.models.social import Kudos
from plugin.pipeline import backfill, digests
from tests.pipeline.conftest import v2_issue


def test_weekly_digest_is_sent_once_to_subscribers_on_their_latest_issue(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    site.host.load_jira_issues(
        [
            v2_issue("AMQ-1", 1001, "Old issue", "2024-01-02T00:00:00.000+0000"),
            v2_issue(
                "AMQ-2",
                1002,
                "Newer issue",
                "2024-02-02T00:00:00.000+0000",
                created="2024-02-01T00:00:00.000+0000",
            ),
        ]
    )
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    week = digests.last_week(utcnow())
    thanked_at = datetime.combine(week, time(12), tzinfo=UTC)
    with site.db.session() as session:
        for receiver in ("bob", "alice"):
            session.add(
                Kudos(
                    tenant_id=site.tenant_id,
                    source="jira",
                    item_key="AMQ-1",
                    from_account_id="dan",
                    to_account_id=receiver,
                    kind="thanks",
                    message="Saved my release",
                    created_at=thanked_at,
                )
            )
        digests.set_subscription(session, site.tenant_id, "bob", True)  # alice did not opt in

    assert jobs.send_weekly_digests() == {"sent": 1}
    assert jobs.send_weekly_digests() == {}
    [sent] = site.host.notifications
    assert sent["issue"] == "AMQ-2" and sent["to"]["users"] == [{"accountId": "bob"}]
    assert "Saved my release" in sent["textBody"] and not sent["to"]["watchers"]


def test_no_digest_for_a_subscriber_jira_shows_as_deactivated(sqlite_url: str, make_site: Any) -> None:
    from sqlalchemy import update

    from plugin.models.content import Person

    site = make_site(sqlite_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Old issue", "2024-01-02T00:00:00.000+0000")])
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    with site.db.session() as session:
        for person in ("bob", "carol"):
            digests.set_subscription(session, site.tenant_id, person, True)
        session.execute(update(Person).where(Person.account_id == "bob").values(active=False))
        due = digests.due(session, digests.last_week(utcnow()))
    assert [account for _, account in due] == ["carol"]


def test_a_digest_the_site_refuses_does_not_hold_up_the_other_subscribers(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Old issue", "2024-01-02T00:00:00.000+0000")])
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    thanked_at = datetime.combine(digests.last_week(utcnow()), time(12), tzinfo=UTC)
    with site.db.session() as session:
        for receiver in ("alice", "bob"):
            session.add(Kudos(tenant_id=site.tenant_id, source="jira", item_key="AMQ-1",
                              from_account_id="dan", to_account_id=receiver, kind="thanks",
                              message="Thanks", created_at=thanked_at))
            digests.set_subscription(session, site.tenant_id, receiver, True)
    site.host.inject("/rest/api/3/issue/AMQ-1/notify", 400)  # alice's, sent first, is refused

    assert jobs.send_weekly_digests() == {"failed": 1, "sent": 1}
    assert [n["to"]["users"] for n in site.host.notifications] == [[{"accountId": "bob"}]]
    assert jobs.send_weekly_digests() == {"sent": 1}  # alice's comes on the next run
    assert len(site.host.notifications) == 2


@pytest.mark.parametrize(("start", "named"), [
    ("2026-11-23", "23 to 29 Nov 2026"),
    ("2026-11-30", "30 Nov to 6 Dec 2026"),
    ("2026-12-28", "28 Dec 2026 to 3 Jan 2027"),
])
def test_a_digests_subject_names_its_week_as_people_read_dates(start: str, named: str) -> None:
    digest = {"summary": "You answered 1 question", "kudos": [], "week_start": start}
    assert digests._message(digest)["subject"] == f"Your week in Inflow: {named}"
