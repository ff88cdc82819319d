"""Question follow-ups: reminded once, passed on, closed by the next expert's comment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from connect.db import utcnow
from connect.host_client import HostClient
from jobs import pipeline as jobs
from plugin.models.social import Question, QuestionEvent
from plugin.services import questions
from tests.pipeline.conftest import Site, v2_issue
from tests.pipeline.test_events import confluence_script, deliver_and_apply, jira_time


def mentions(site: Site, key: str) -> list[str]:
    """Account ids @mentioned by the comments the app posted on an issue."""
    found = []
    for comment in site.host.comments(key):
        for block in comment["body"]["content"]:
            found += [n["attrs"]["id"] for n in block.get("content", []) if n["type"] == "mention"]
    return found


def post_comment_webhook(site: Site, key: str, author: str, visibility: dict[str, str] | None = None) -> None:
    path = "/webhooks/jira/comment_created"
    now = utcnow()
    body = {
        "webhookEvent": "comment_created",
        "timestamp": int(now.timestamp() * 1000),
        "comment": {
            "id": "77",
            "author": {"accountId": author},
            "body": "Restart it",
            "created": jira_time(now),
            **({"visibility": visibility} if visibility else {}),
        },
        "issue": {"id": "1001", "key": key},
    }
    response = site.app.test_client().post(path, json=body, headers=site.auth.headers("POST", path))
    assert response.status_code == 202
    jobs.process_event(response.get_json()["event_id"])


def test_a_question_is_reminded_once_passed_on_and_closed_by_the_next_experts_comment(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    site.host.load_jira_issues(
        [v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(utcnow()))]
    )
    with site.db.session() as session:
        question = questions.ask(
            session,
            site.tenant_id,
            source="jira",
            key="AMQ-1",
            project="AMQ",
            asker_account_id="alice",
            expert_account_id="bob",
            expert_name="Bob",
            text="Why does the broker drop messages?",
            client=site.client(),
            next_experts=["carol"],
            now=utcnow() - timedelta(hours=49),
        )
        question_id = question.id
    assert mentions(site, "AMQ-1") == ["bob"]

    assert jobs.run_question_followups() == {"reminded": 1}
    assert jobs.run_question_followups() == {}  # one reminder per follow-up period
    assert mentions(site, "AMQ-1") == ["bob", "bob"]

    with site.db.session() as session:  # the next follow-up period has passed
        session.execute(update(Question).values(follow_up_at=utcnow() - timedelta(minutes=1)))
    assert jobs.run_question_followups() == {"passed": 1}
    assert mentions(site, "AMQ-1") == ["bob", "bob", "carol"]

    post_comment_webhook(site, "AMQ-1", "carol")
    with site.db.session() as session:
        question = session.get(Question, question_id)
        assert question.state == "answered" and question.expert_account_id == "carol"
    assert jobs.run_question_followups() == {}


def test_an_expert_who_opted_out_since_being_asked_is_not_reminded(sqlite_url: str, make_site: Any) -> None:
    from plugin.services.settings import set_preference

    site = make_site(sqlite_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(utcnow()))])
    with site.db.session() as session:
        questions.ask(session, site.tenant_id, source="jira", key="AMQ-1", project="AMQ",
                      asker_account_id="alice", expert_account_id="bob", expert_name="Bob",
                      text="Why?", client=site.client(), next_experts=["carol"],
                      now=utcnow() - timedelta(hours=49))
        set_preference(session, site.tenant_id, "bob", True, None)
    assert jobs.run_question_followups() == {"passed": 1}  # at once, not after another period
    assert mentions(site, "AMQ-1") == ["bob", "carol"]


def test_an_answer_in_a_restricted_comment_leaves_the_question_open(sqlite_url: str, make_site: Any) -> None:
    """The asker may not be in the role or group that may read it: the answer is not theirs yet."""
    site = make_site(sqlite_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(utcnow()))])
    with site.db.session() as session:
        question_id = questions.ask(session, site.tenant_id, source="jira", key="AMQ-1", project="AMQ",
                                    asker_account_id="alice", expert_account_id="bob", expert_name="Bob",
                                    text="Why does the broker drop messages?", client=site.client(),
                                    next_experts=[]).id

    post_comment_webhook(site, "AMQ-1", "bob", visibility={"type": "role", "value": "Developers"})
    with site.db.session() as session:
        assert session.get(Question, question_id).state == "asked"

    post_comment_webhook(site, "AMQ-1", "bob")
    with site.db.session() as session:
        assert session.get(Question, question_id).state == "answered"


def _asked_two_days_ago(site: Site) -> int:
    """Alice asked Bob about AMQ-1, Carol next, more than a follow-up period ago."""
    with site.db.session() as session:
        return questions.ask(session, site.tenant_id, source="jira", key="AMQ-1", project="AMQ",
                             asker_account_id="alice", expert_account_id="bob", expert_name="Bob",
                             text="Why does the broker drop messages?", client=site.client(),
                             next_experts=["carol"], now=utcnow() - timedelta(hours=49)).id


def _comment_as(site: Site, account_id: str, key: str, text: str) -> None:
    """A comment someone writes on the issue in Jira, its webhook never delivered."""
    body = {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]}
    client = HostClient.for_tenant(site.tenant(), site.host.app_key, auth_server=site.host.url)
    client.as_user(account_id).request("POST", f"/rest/api/3/issue/{key}/comment",
                                       json={"body": body})


def test_an_answer_whose_webhook_was_lost_is_found_by_reconciliation(
    sqlite_url: str, make_site: Any
) -> None:
    """The expert answered: they are not reminded of it, nor is the question passed on."""
    site = make_site(sqlite_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(utcnow()))])
    question_id = _asked_two_days_ago(site)
    _comment_as(site, "bob", "AMQ-1", "Restart it")

    jobs.reconcile_tenant(site.tenant_id)
    with site.db.session() as session:
        assert session.get(Question, question_id).state == "answered"
    assert jobs.run_question_followups() == {}
    assert mentions(site, "AMQ-1") == ["bob"]


def test_a_comment_from_before_an_expert_was_asked_does_not_answer_for_them(
    sqlite_url: str, make_site: Any
) -> None:
    """Carol commented before the question passed to her: that was no answer to it."""
    site = make_site(sqlite_url)
    earlier = {"author": {"accountId": "carol", "displayName": "Carol"}, "body": "Build is green",
               "created": jira_time(utcnow() - timedelta(hours=2)), "id": "5"}
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(utcnow()),
                                         comment={"comments": [earlier], "total": 1})])
    question_id = _asked_two_days_ago(site)
    with site.db.session() as session:  # Bob was reminded: the next step passes it on
        session.execute(update(Question).values(reminded_at=utcnow() - timedelta(hours=1)))
    assert jobs.run_question_followups() == {"passed": 1}
    with site.db.session() as session:  # passed a minute ago: the site's times are to the second
        session.execute(update(QuestionEvent).where(QuestionEvent.kind == "passed")
                        .values(at=utcnow() - timedelta(minutes=1)))

    jobs.reconcile_tenant(site.tenant_id)
    with site.db.session() as session:
        question = session.get(Question, question_id)
        assert (question.state, question.expert_account_id) == ("asked", "carol")
    _comment_as(site, "carol", "AMQ-1", "Restart it")
    jobs.reconcile_tenant(site.tenant_id)
    with site.db.session() as session:
        assert session.get(Question, question_id).state == "answered"


def test_a_question_whose_comment_the_asker_deleted_is_withdrawn(sqlite_url: str, make_site: Any) -> None:
    """Not reminded, not passed on, not listed: what the asker took back is gone from Inflow too."""
    site = make_site(sqlite_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(utcnow()))])
    question_id, other_id = _asked_two_days_ago(site), _asked_two_days_ago(site)
    with site.db.session() as session:
        comment_id = session.get_one(Question, question_id).comment_id
    deliver_and_apply(site, "/webhooks/jira/comment_deleted", {
        "webhookEvent": "comment_deleted", "timestamp": int(utcnow().timestamp() * 1000),
        "comment": {"id": comment_id}, "issue": {"id": "1001", "key": "AMQ-1"}})
    with site.db.session() as session:
        assert session.get(Question, question_id) is None
        assert session.get_one(Question, other_id).state == "asked"
    assert jobs.run_question_followups() == {"reminded": 1}  # the other question only


def test_a_page_question_whose_comment_was_removed_is_withdrawn(sqlite_url: str, make_site: Any) -> None:
    site = make_site(sqlite_url, "confluence")
    confluence_script(site)  # page 777
    with site.db.session() as session:
        question = questions.ask(session, site.tenant_id, source="confluence", key="777", project=None,
                                 asker_account_id="alice", expert_account_id="dave", expert_name="Dave",
                                 text="Which broker?", client=site.client(), next_experts=[])
        question_id, comment_id = question.id, question.comment_id
    deliver_and_apply(site, "/webhooks/confluence/comment_removed", {
        "timestamp": int(utcnow().timestamp() * 1000),
        "comment": {"id": int(comment_id), "parent": {"id": 777, "contentType": "page"}}})
    with site.db.session() as session:
        assert session.get(Question, question_id) is None


def test_a_question_follows_its_issue_to_another_project(sqlite_url: str, make_site: Any) -> None:
    """Moved, the issue answers to its new key: the expert's answer there closes the question."""
    site = make_site(sqlite_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(utcnow()))])
    question_id = _asked_two_days_ago(site)
    site.host.load_jira_issues([v2_issue("ART-7", 1001, "Broker drops messages", jira_time(utcnow()))])
    deliver_and_apply(site, "/webhooks/jira/issue_updated", {
        "webhookEvent": "jira:issue_updated", "timestamp": int(utcnow().timestamp() * 1000),
        "issue": {"id": "1001", "key": "ART-7"}, "changelog": {"items": [
            {"field": "Key", "fieldtype": "jira", "fromString": "AMQ-1", "toString": "ART-7"},
            {"field": "project", "fieldtype": "jira", "fromString": "ActiveMQ", "toString": "Artemis"}]}})
    with site.db.session() as session:
        question = session.get_one(Question, question_id)
        assert (question.item_key, question.project, question.state) == ("ART-7", "ART", "asked")
    post_comment_webhook(site, "ART-7", "bob")
    with site.db.session() as session:
        assert session.get_one(Question, question_id).state == "answered"


@pytest.mark.parametrize("delivered", [True, False])
def test_the_first_experts_late_answer_closes_a_question_passed_on(
    sqlite_url: str, make_site: Any, delivered: bool
) -> None:
    """Bob answers after it went to Carol: no one is chased further, and Bob is the one credited."""
    site = make_site(sqlite_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(utcnow()))])
    question_id = _asked_two_days_ago(site)
    assert jobs.run_question_followups() == {"reminded": 1}
    with site.db.session() as session:  # the next follow-up period has passed
        session.execute(update(Question).values(follow_up_at=utcnow() - timedelta(minutes=1)))
    assert jobs.run_question_followups() == {"passed": 1}

    if delivered:
        post_comment_webhook(site, "AMQ-1", "bob")
    else:  # its webhook lost: reconciliation reads it back
        _comment_as(site, "bob", "AMQ-1", "Restart it")
        jobs.reconcile_tenant(site.tenant_id)
    with site.db.session() as session:
        question = session.get_one(Question, question_id)
        assert (question.state, question.expert_account_id) == ("answered", "bob")
