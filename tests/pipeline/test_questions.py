"""Question follow-ups: reminded once, passed on, closed by the next expert's comment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from connect.db import utcnow
from jobs import pipeline as jobs
from plugin.models.social import Question
from plugin.services import questions
from tests.pipeline.conftest import Site, v2_issue
from tests.pipeline.test_events import jira_time


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
