"""Question follow-ups that meet a failing host, project group rules or another run at once."""

from __future__ import annotations

import copy
import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from connect.db import utcnow
from connect.models import Tenant
from jobs import pipeline as jobs
from plugin.matching.store import get_item
from plugin.models.social import Question, QuestionEvent
from plugin.services import permissions, questions
from plugin.services.settings import save_project_settings
from sandbox.site import data
from tests.pipeline.conftest import Site, v2_issue
from tests.pipeline.test_events import jira_time
from tests.pipeline.test_questions import mentions

BLOG_ID = "880001"


def _issues(site: Site, *keys: str) -> None:
    site.host.load_jira_issues([v2_issue(key, 1000 + n, f"Broker issue {n}", jira_time(utcnow()))
                                for n, key in enumerate(keys, 1)])


def _ask(site: Site, key: str, expert: str = "bob", next_experts: tuple[str, ...] = ("carol",),
         source: str = "jira", project: str | None = "AMQ") -> int:
    """A question asked 49 hours ago (its follow-up is due), as the app."""
    with site.db.session() as session:
        return questions.ask(session, site.tenant_id, source=source, key=key, project=project,
                             asker_account_id="alice", expert_account_id=expert,
                             expert_name=expert, text="Why?", client=site.client(),
                             next_experts=list(next_experts),
                             now=utcnow() - timedelta(hours=49)).id


def _question(site: Site, question_id: int) -> Question:
    with site.db.session() as session:
        return session.get_one(Question, question_id)


def _events(site: Site, question_id: int) -> list[tuple[str, str | None]]:
    with site.db.session() as session:
        return [(e.kind, e.account_id) for e in session.scalars(
            select(QuestionEvent).where(QuestionEvent.question_id == question_id)
            .order_by(QuestionEvent.id))]


def _make_due(site: Site) -> None:
    """The next follow-up time of every question has come."""
    with site.db.session() as session:
        session.execute(update(Question).values(follow_up_at=utcnow() - timedelta(minutes=1)))


def _closed(site: Site, question_id: int, reason: str) -> None:
    question = _question(site, question_id)
    assert (question.state, question.follow_up_at) == ("unanswered", None)
    assert _events(site, question_id)[-1] == (reason, None)


def test_a_question_on_a_deleted_issue_closes_and_the_others_are_still_reminded(
        database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    _issues(site, "AMQ-1", "AMQ-2")
    gone, other = _ask(site, "AMQ-1"), _ask(site, "AMQ-2")
    with site.host.lock:  # deleted on the site after the question was asked: the host answers 404
        del site.host.store.issues["AMQ-1"]
    assert jobs.run_question_followups() == {"closed": 1, "reminded": 1}
    assert mentions(site, "AMQ-2") == ["bob", "bob"]
    _closed(site, gone, "item_missing")
    assert _question(site, other).state == "asked"
    _make_due(site)
    assert jobs.run_question_followups() == {"passed": 1}  # the closed one is not tried again
    assert mentions(site, "AMQ-2") == ["bob", "bob", "carol"]


def test_a_question_the_app_may_no_longer_comment_on_closes(
        database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    _issues(site, "AMQ-1", "AMQ-2")
    private, other = _ask(site, "AMQ-1"), _ask(site, "AMQ-2")
    site.host.inject("/rest/api/3/issue/AMQ-1/comment", 403)  # made private
    assert jobs.run_question_followups() == {"closed": 1, "reminded": 1}
    _closed(site, private, "item_forbidden")
    assert _question(site, other).reminded_at is not None


def _put_off(site: Site, question_id: int, before: datetime) -> None:
    """The follow-up waits the retry delay, nothing else of the question changed."""
    question = _question(site, question_id)
    assert question.state == "asked" and question.follow_up_at is not None
    assert before + questions.RETRY_DELAY <= question.follow_up_at <= utcnow() + questions.RETRY_DELAY


def test_a_host_error_puts_one_follow_up_off_and_the_run_goes_on(
        database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    _issues(site, "AMQ-1", "AMQ-2")
    failing, other = _ask(site, "AMQ-1"), _ask(site, "AMQ-2")
    site.host.inject("/rest/api/3/issue/AMQ-1/comment", 500)
    before = utcnow()
    assert jobs.run_question_followups() == {"retry": 1, "reminded": 1}
    _put_off(site, failing, before)
    assert _question(site, failing).reminded_at is None
    assert mentions(site, "AMQ-1") == ["bob"] and mentions(site, "AMQ-2") == ["bob", "bob"]
    assert jobs.run_question_followups() == {}  # not before the retry delay
    with site.db.session() as session:  # the retry delay has passed
        session.execute(update(Question).where(Question.id == failing)
                        .values(follow_up_at=utcnow() - timedelta(minutes=1)))
    assert jobs.run_question_followups() == {"reminded": 1}
    assert mentions(site, "AMQ-1") == ["bob", "bob"]
    assert _events(site, other) == [("asked", "alice"), ("reminded", "bob")]


def test_a_failed_pass_on_keeps_the_next_experts(database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    _issues(site, "AMQ-1")
    question_id = _ask(site, "AMQ-1", next_experts=("carol", "dave"))
    assert jobs.run_question_followups() == {"reminded": 1}
    _make_due(site)
    site.host.inject("/rest/api/3/issue/AMQ-1/comment", 500)
    before = utcnow()
    assert jobs.run_question_followups() == {"retry": 1}
    _put_off(site, question_id, before)
    question = _question(site, question_id)
    assert (question.expert_account_id, question.next_experts) == ("bob", ["carol", "dave"])
    _make_due(site)
    assert jobs.run_question_followups() == {"passed": 1}
    assert mentions(site, "AMQ-1") == ["bob", "bob", "carol"]
    assert _question(site, question_id).next_experts == ["dave"]


def _with_groups(site: Site, rules: dict[str, list[str]]) -> int:
    _issues(site, "AMQ-1")
    # Issues they work on make carol and mallory people the site knows.
    site.host.load_jira_issues([
        v2_issue(f"AMQ-{n}", 1100 + n, "Other", jira_time(utcnow()),
                 assignee={"accountId": who, "displayName": who.title()})
        for n, who in ((8, "carol"), (9, "mallory"))])
    site.host.add_to_group("bob", "dev")
    site.host.add_to_group("carol", "dev")
    site.host.add_to_group("mallory", "contractors")
    with site.db.session() as session:
        save_project_settings(session, site.tenant_id, "AMQ", rules, "admin")
    return _ask(site, "AMQ-1", next_experts=("mallory", "carol"))


def test_an_expert_in_an_included_group_is_reminded(database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    _with_groups(site, {"include_groups": ["dev"]})
    assert jobs.run_question_followups() == {"reminded": 1}
    assert mentions(site, "AMQ-1") == ["bob", "bob"]


def test_a_question_is_not_passed_to_someone_in_an_excluded_group(
        database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    question_id = _with_groups(site, {"exclude_groups": ["contractors"]})
    assert jobs.run_question_followups() == {"reminded": 1}
    _make_due(site)
    assert jobs.run_question_followups() == {"passed": 1}
    assert mentions(site, "AMQ-1") == ["bob", "bob", "carol"]
    assert _question(site, question_id).expert_account_id == "carol"


def test_a_question_is_not_passed_to_someone_the_site_no_longer_knows(
        database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    question_id = _with_groups(site, {"exclude_groups": ["contractors"]})
    with site.host.lock:  # removed from the site: their groups are not found (404)
        del site.host.store.users["mallory"]
    assert jobs.run_question_followups() == {"reminded": 1}
    _make_due(site)
    assert jobs.run_question_followups() == {"passed": 1}
    assert _question(site, question_id).expert_account_id == "carol"


def test_two_runs_at_once_remind_the_expert_once(database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    _issues(site, "AMQ-1")
    question_id = _ask(site, "AMQ-1")
    # The reminder takes a second to post, so the other run reads the question meanwhile.
    site.host.inject("/rest/api/3/issue/AMQ-1/comment", 201, times=2, delay=1.0)
    results: list[dict[str, int]] = []
    runs = [threading.Thread(target=lambda: results.append(jobs.run_question_followups()))
            for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert sum(result.get("reminded", 0) for result in results) == 1
    assert mentions(site, "AMQ-1") == ["bob", "bob"]
    assert _events(site, question_id) == [("asked", "alice"), ("reminded", "bob")]


def test_a_run_that_read_the_question_before_another_reminded_does_not_remind_again(
        database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    _issues(site, "AMQ-1")
    question_id = _ask(site, "AMQ-1")
    clients = lambda tenant: site.client()  # noqa: E731
    with site.db.session() as late:
        # It read the question (and holds it) before the other run wrote.
        seen = late.get_one(Question, question_id)
        with site.db.session() as first:
            assert questions.follow_up(first, question_id, clients) == "reminded"
        assert questions.follow_up(late, question_id, clients) == "nothing"
        assert seen.reminded_at is not None  # it sees what the other run did
    assert mentions(site, "AMQ-1") == ["bob", "bob"]
    assert _events(site, question_id) == [("asked", "alice"), ("reminded", "bob")]


def test_a_question_on_a_blog_post_not_stored_yet_is_reminded_there(
        database_url: str, make_site: Any) -> None:
    site = make_site(database_url, "confluence")
    blog = copy.deepcopy(data.confluence_pages()[1])
    blog["id"] = BLOG_ID
    site.host.load_confluence_pages([blog], kind="blogpost")
    expert = data.confluence_users()[0]["accountId"]
    _ask(site, BLOG_ID, expert=expert, next_experts=(), source="confluence", project=None)
    assert jobs.run_question_followups() == {"reminded": 1}
    posted = site.host.calls_to("/wiki/api/v2/footer-comments", "POST")
    assert [call.json.get("blogPostId") for call in posted] == [BLOG_ID, BLOG_ID]
    assert len(site.host.comments(BLOG_ID)) == 2


class Killed(BaseException):
    """The worker dies here (a kill, a job timeout): no handler of the job's runs."""


def test_a_run_killed_after_posting_a_reminder_does_not_post_it_again(
        database_url: str, make_site: Any, monkeypatch: Any) -> None:
    site = make_site(database_url)
    _issues(site, "AMQ-1")
    question_id = _ask(site, "AMQ-1")
    posted = questions.post_comment

    def post_then_die(*args: Any, **kwargs: Any) -> str | None:
        posted(*args, **kwargs)
        raise Killed

    with monkeypatch.context() as patched, pytest.raises(Killed):
        patched.setattr(questions, "post_comment", post_then_die)
        jobs.run_question_followups()
    assert mentions(site, "AMQ-1") == ["bob", "bob"]  # asked, then reminded
    with site.db.session() as session:  # the retry delay of a run that died has passed
        session.execute(update(Question).where(Question.follow_up_at <= utcnow() + questions.RETRY_DELAY)
                        .values(follow_up_at=utcnow() - timedelta(minutes=1)))
    assert jobs.run_question_followups() == {}
    assert mentions(site, "AMQ-1") == ["bob", "bob"]
    assert _events(site, question_id) == [("asked", "alice"), ("reminded", "bob")]


@pytest.mark.parametrize("left", [{"installed": False}, {"enabled": False}])
def test_no_follow_up_reaches_a_site_the_app_is_no_longer_on(
        database_url: str, make_site: Any, left: dict[str, bool]) -> None:
    site = make_site(database_url)
    _issues(site, "AMQ-1")
    question_id = _ask(site, "AMQ-1")
    with site.db.session() as session:
        session.execute(update(Tenant).where(Tenant.id == site.tenant_id).values(**left))
    assert jobs.run_question_followups() == {}
    assert mentions(site, "AMQ-1") == ["bob"] and _question(site, question_id).reminded_at is None
    with site.db.session() as session:  # the app is back: the follow-up is due at once
        session.execute(update(Tenant).where(Tenant.id == site.tenant_id).values(installed=True, enabled=True))
    assert jobs.run_question_followups() == {"reminded": 1}


def test_a_reminder_quotes_the_question_whatever_order_comments_are_read_in(
        database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    _issues(site, "AMQ-1")
    _ask(site, "AMQ-1")
    assert jobs.run_question_followups() == {"reminded": 1}
    reminder = json.dumps(site.host.comments("AMQ-1")[-1]["body"])
    assert "a gentle reminder of this question: Why?" in reminder and "above" not in reminder


def _ask_on_stored(site: Site, next_experts: tuple[str, ...] = ("carol",)) -> int:
    """A due question on AMQ-1 as Inflow stored it, with the issue id permissions are checked by."""
    _issues(site, "AMQ-1")
    jobs.reconcile_tenant(site.tenant_id)
    return _ask(site, "AMQ-1", next_experts=next_experts)


def test_no_one_is_reminded_of_or_passed_an_issue_they_may_no_longer_see(
        database_url: str, make_site: Any) -> None:
    """Mentioned where they may not look, they would never answer: the next one who can is asked."""
    site = make_site(database_url)
    question_id = _ask_on_stored(site, next_experts=("mallory", "carol"))
    site.host.deny("bob", "AMQ")  # moved out of the project since being asked
    site.host.deny("mallory", "AMQ-1")
    assert jobs.run_question_followups() == {"passed": 1}
    assert mentions(site, "AMQ-1") == ["bob", "carol"]
    assert _question(site, question_id).expert_account_id == "carol"


def test_an_account_the_site_will_not_check_is_passed_over_not_retried_for_ever(
        database_url: str, make_site: Any) -> None:
    site = make_site(database_url)
    question_id = _ask_on_stored(site)
    with site.db.session() as session:  # Alice's access to it was checked a moment ago
        item = get_item(session, site.tenant_id, "jira", "AMQ-1")
        assert permissions.visible_to(site.client(), site.tenant_id, "alice")([item])
    site.host.inject("/rest/api/3/permissions/check", 400)  # Bob's check: "no such user"
    assert jobs.run_question_followups() == {"passed": 1}
    assert _question(site, question_id).expert_account_id == "carol"


def test_a_question_closes_when_its_asker_may_no_longer_see_the_issue(
        database_url: str, make_site: Any) -> None:
    """No one is chased for an answer the asker could not read."""
    site = make_site(database_url)
    question_id = _ask_on_stored(site)
    site.host.deny("alice", "AMQ")
    assert jobs.run_question_followups() == {"closed": 1}
    assert mentions(site, "AMQ-1") == ["bob"]
    _closed(site, question_id, "asker_forbidden")
