"""Recognition on a site with both products: the digest, impact and the board count both, and
a digest names every giver."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from connect.db import utcnow
from jobs import pipeline as jobs
from plugin import search
from plugin.matching.store import get_item
from plugin.models.social import Feedback, Kudos, Question
from plugin.pipeline import backfill, digests
from plugin.services import feedback, questions, recognition
from plugin.services.panel_cache import FRAGMENTS
from sandbox.site import data
from tests.conftest import TenantAuth
from tests.pipeline.conftest import Site, v2_issue
from tests.sandbox_site import install_into

PAGE_ID = "990001"
RECEIVER = "bob"


@dataclass
class Both:
    """The fake site's Jira and Confluence installed in one Inflow, each with work learned."""

    site: Site
    wiki: TenantAuth
    space: str

    def thank(self, tenant_id: int, source: str, key: str, giver: str, message: str,
              at: datetime, space: str | None = None) -> None:
        with self.site.db.session() as session:
            session.add(Kudos(tenant_id=tenant_id, source=source, item_key=key, space=space,
                              from_account_id=giver, to_account_id=RECEIVER, kind="thanks",
                              message=message, created_at=at))


@pytest.fixture
def both(database_url: str, make_site: Any) -> Both:
    site = make_site(database_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Broker drops messages",
                                         "2024-01-02T00:00:00.000+0000",
                                         assignee={"accountId": RECEIVER, "displayName": "Bob"})])
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    wiki = install_into(site.host, site.db, "confluence")
    page = copy.deepcopy(data.confluence_pages()[0])
    page["id"] = PAGE_ID
    site.host.load_confluence_pages([page])
    assert backfill.run_backfill(site.db, wiki.tenant_id, jobs.client_for)
    assert search.catch_up(site.db)  # the two installations are indexed as one site
    space = next(s["key"] for s in data.confluence_spaces() if s["id"] == page["spaceId"])
    return Both(site, wiki, space)


def _last_week_noon() -> datetime:
    return datetime.combine(digests.last_week(utcnow()), time(12), tzinfo=UTC)


def _sent_digest(site: Site) -> dict[str, Any]:
    with site.db.session() as session:
        digests.set_subscription(session, site.tenant_id, RECEIVER, True)
    assert jobs.send_weekly_digests() == {"sent": 1}
    [sent] = site.host.notifications
    return sent


def test_the_digest_sent_from_jira_counts_what_was_done_in_confluence(both: Both) -> None:
    site, wiki, at = both.site, both.wiki.tenant_id, _last_week_noon()
    both.thank(wiki, "confluence", PAGE_ID, "carol", "Great runbook", at)
    both.thank(site.tenant_id, "jira", "AMQ-1", "carol", "Fixed my broker", at)
    with site.db.session() as session:
        issue = get_item(session, site.tenant_id, "jira", "AMQ-1")
        assert issue is not None
        # On the page, someone said bob's issue helped; bob answered a question asked there.
        session.add(Feedback(tenant_id=wiki, source="confluence", item_key=PAGE_ID,
                             target_item_id=issue.id, account_id="carol", verdict="helped",
                             created_at=at, updated_at=at))
        session.add(Question(tenant_id=wiki, source="confluence", item_key=PAGE_ID,
                             asker_account_id="carol", expert_account_id=RECEIVER,
                             text="Still how we do it?", state="answered",
                             asked_at=at - timedelta(hours=1), answered_at=at))

    sent = _sent_digest(site)
    title = data.confluence_pages()[0]["title"]
    # The page by its title, as people name it; never by its id.
    assert f'Someone thanked you on the page "{title}": Great runbook' in sent["textBody"]
    assert "Someone thanked you on AMQ-1: Fixed my broker" in sent["textBody"]
    assert PAGE_ID not in sent["textBody"] + sent["htmlBody"]
    assert sent["textBody"].startswith("Your work helped 1 item, you answered 1 question "
                                       "and received 2 kudos this week.")  # not "1 items"


def test_the_digest_names_givers_jira_knows_and_never_shows_an_account_id(both: Both) -> None:
    site, at = both.site, _last_week_noon()
    # Known to Inflow in Confluence alone, by id (pages carry no names): Jira names them.
    colleague = data.confluence_users()[0]
    both.thank(site.tenant_id, "jira", "AMQ-1", colleague["accountId"], "Thanks!", at)
    both.thank(site.tenant_id, "jira", "AMQ-1", "557058:gone", "Old thanks", at + timedelta(1))

    sent = _sent_digest(site)
    assert sent["textBody"].splitlines()[1:] == [
        f"{colleague['displayName']} thanked you on AMQ-1: Thanks!",
        "Someone thanked you on AMQ-1: Old thanks"]
    assert "557058:gone" not in sent["htmlBody"]


def test_the_whole_site_board_counts_both_products_a_space_board_its_own(both: Both) -> None:
    site, wiki, since = both.site, both.wiki.tenant_id, utcnow() - timedelta(days=30)
    both.thank(wiki, "confluence", PAGE_ID, "carol", "", utcnow(), space=both.space)
    # A Jira project with the space's key: not that space's thanks.
    both.thank(site.tenant_id, "jira", "AMQ-1", "dan", "", utcnow(), space=both.space)
    with site.db.session() as session:
        def counts(tenant_id: int, space: str | None = None) -> list[tuple[str, int]]:
            rows = recognition.board(session, tenant_id, since, space=space)
            return [(row["account_id"], row["kudos"]) for row in rows]

        assert counts(wiki) == counts(site.tenant_id) == [(RECEIVER, 2)]
        assert counts(wiki, both.space) == [(RECEIVER, 1)]


def test_a_cached_whole_site_board_shows_thanks_given_in_jira(both: Both) -> None:
    site, wiki = both.site, both.wiki
    FRAGMENTS.clear()
    both.thank(wiki.tenant_id, "confluence", PAGE_ID, "carol", "", utcnow(), space=both.space)
    path = f"/confluence/macros/board?pageId={PAGE_ID}&scope=site&period=month"
    client = site.app.test_client()

    def board() -> str:
        response = client.get(path, headers=wiki.headers("GET", path, sub="carol"))
        assert response.status_code == 200
        return response.get_data(as_text=True)

    shown = board()
    hits = FRAGMENTS.hits
    assert board() == shown and FRAGMENTS.hits == hits + 1  # kept while nothing changed
    assert "1 kudos" in shown
    both.thank(site.tenant_id, "jira", "AMQ-1", "dan", "", utcnow())
    assert "2 kudos" in board()


def test_the_digest_says_a_verdict_or_an_accepted_answer_in_its_own_words(both: Both) -> None:
    site, wiki, at = both.site, both.wiki.tenant_id, _last_week_noon()
    with site.db.session() as session:
        issue = get_item(session, site.tenant_id, "jira", "AMQ-1")
        assert issue is not None
        # On the page, carol said bob's issue helped, and accepted his answer to her question.
        feedback.give(session, wiki, source="confluence", key=PAGE_ID, project=both.space,
                      target_item_id=issue.id, verdict="helped", account_id="carol", now=at)
        question = Question(tenant_id=site.tenant_id, source="jira", item_key="AMQ-1",
                            project="AMQ", asker_account_id="carol", expert_account_id=RECEIVER,
                            text="Still so?", state="answered", asked_at=at, answered_at=at)
        session.add(question)
        session.flush()
        questions.accept(session, site.tenant_id, question.id, "carol", now=at)

    lines = _sent_digest(site)["textBody"].splitlines()[1:]
    assert sorted(lines) == ["Someone accepted your answer on AMQ-1",
                             "Someone found your work on AMQ-1 helpful"]
