"""Every account Inflow holds is reported, and an erased one leaves no trace in others' questions."""

from __future__ import annotations

from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, or_, select

from connect.db import utcnow
from jobs import pipeline as jobs
from plugin import search
from plugin.content.normalize import jira_issue_to_doc
from plugin.matching.store import upsert_item
from plugin.models.content import Contribution, Item, Person
from plugin.models.social import (
    PanelEvent,
    PersonPreference,
    ProjectSettings,
    Question,
    QuestionEvent,
)
from plugin.pipeline import backfill
from plugin.services import privacy
from plugin.services.permissions import SharedAnswers
from plugin.services.settings import project_settings, save_project_settings, set_preference
from tests.pipeline.conftest import Site, v2_issue
from tests.pipeline.test_events import jira_time
from tests.pipeline.test_privacy import ERASED, traces


def reported_accounts(site: Site) -> set[str]:
    """Every account the site's reports to Atlassian named so far."""
    return {a["accountId"] for call in site.host.calls_to("/app/report-accounts/", "POST")
            for a in call.json["accounts"]}


def _question(site: Site, asker: str, expert: str, next_experts: list[str]) -> int:
    with site.db.session() as session:
        question = Question(tenant_id=site.tenant_id, source="jira", item_key="AMQ-1",
                            asker_account_id=asker, expert_account_id=expert,
                            next_experts=next_experts, text="Why does the broker drop messages?")
        session.add(question)
        session.flush()
        return question.id


def test_an_account_that_only_asked_viewed_and_chose_is_reported_and_erased_when_closed(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    _question(site, "zed", "chirino", [])
    with site.db.session() as session:
        session.add(PanelEvent(tenant_id=site.tenant_id, panel="experts", kind="shown",
                               source="jira", item_key="AMQ-1", account_id="zed"))
        set_preference(session, site.tenant_id, "zed", True, None)
    site.host.set_account_status("zed", "closed")

    assert jobs.run_privacy_reporting() == 1
    reported = reported_accounts(site)
    assert {"zed", "chirino"} <= reported
    with site.db.session() as session:
        left = [session.scalar(select(func.count()).select_from(model).where(condition))
                for model, condition in [
                    (Question, or_(Question.asker_account_id == "zed", Question.expert_account_id == "zed")),
                    (PanelEvent, PanelEvent.account_id == "zed")]]
        kept = session.scalar(select(PersonPreference.opted_out).where(PersonPreference.account_id == "zed"))
    assert left == [0, 0]
    assert kept is True  # the opt-out is the one fact kept


def test_erasure_takes_the_person_off_others_questions(sqlite_url: str, make_site: Any) -> None:
    site = make_site(sqlite_url)
    passed_on = _question(site, "alice", "dave", ["carol", "erin"])
    with site.db.session() as session:  # carol was reminded before the question went to dave
        session.add(QuestionEvent(tenant_id=site.tenant_id, question_id=passed_on, kind="reminded",
                                  account_id="carol"))
        assert [e["by"] for e in privacy.export_person(session, site.tenant_id, "carol")["question_steps"]] == ["carol"]

    jobs.erase_person(site.tenant_id, "carol")
    with site.db.session() as session:
        question = session.get(Question, passed_on)
        steps = session.scalars(select(QuestionEvent.account_id).where(
            QuestionEvent.question_id == passed_on)).all()
    assert question is not None and question.next_experts == ["erin"]
    assert "carol" not in steps


def _edited_by_someone_else(site: Site, key: str, comment_by: str | None = None) -> None:
    """Jira's issue_updated for the issue (no comments in it: Inflow re-reads the issue), after
    someone edits it, or `comment_by` comments on it."""
    now = utcnow()
    issue = site.host.issue_view(key)
    assert issue is not None
    if comment_by:
        author = {"accountId": comment_by, "displayName": "Back again"}
        body = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
            {"type": "text", "text": "Seen it again on 5.4"}]}]}
        with site.host.lock:
            site.host.store.posted_comments[key].append(
                {"id": "900900", "author": author, "updateAuthor": author, "body": body,
                 "created": jira_time(now), "updated": jira_time(now)})
    path = "/webhooks/jira/issue_updated"
    body = {"webhookEvent": "jira:issue_updated", "timestamp": int(now.timestamp() * 1000),
            "issue": {"id": issue["id"], "key": key, "fields": {"summary": "edited"}}}
    response = site.app.test_client().post(path, json=body, headers=site.auth.headers("POST", path))
    assert response.status_code == 202
    jobs.process_event(response.get_json()["event_id"])


def test_an_erased_persons_past_work_is_never_learned_again_but_new_work_is(
    database_url: str, make_site: Any
) -> None:
    site = make_site(database_url)
    site.host.load_jira_dataset("apache-activemq", limit=100)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    with site.db.session() as session:
        key = session.scalar(select(Item.key).join(Contribution, Contribution.item_id == Item.id).where(
            Contribution.account_id == ERASED, Contribution.role == "commenter").limit(1))
    jobs.erase_person(site.tenant_id, ERASED)
    assert traces(site, ERASED) == 0

    _edited_by_someone_else(site, key)  # re-read: the host still shows their old comments
    assert traces(site, ERASED) == 0
    with site.db.session() as session:  # an admin backfills the site again
        backfill.request_backfill(session, site.tenant_id, restart=True)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert traces(site, ERASED) == 0

    _edited_by_someone_else(site, key, comment_by=ERASED)  # they comment again: new work
    with site.db.session() as session:
        roles = session.execute(select(Contribution.role, Contribution.at).where(
            Contribution.account_id == ERASED)).all()
    assert [role for role, _ in roles] == ["commenter"]


def test_export_names_the_settings_that_name_a_person_and_erasure_forgets_who_saved_them(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    with site.db.session() as session:
        save_project_settings(session, site.tenant_id, "AMQ", {"exclude_people": ["erin"]}, "carol")
        saved_at = project_row(session, site.tenant_id).updated_at
        exported = privacy.export_person(session, site.tenant_id, "carol")["project_settings"]
        excluded = privacy.export_person(session, site.tenant_id, "erin")["project_settings"]
    assert [(s["project"], s["saved_by_them"], s["rules"]) for s in exported] == [("AMQ", True, [])]
    assert [(s["project"], s["saved_by_them"], s["rules"]) for s in excluded] == [("AMQ", False, ["exclude_people"])]

    jobs.erase_person(site.tenant_id, "carol")
    jobs.erase_person(site.tenant_id, "erin")
    with site.db.session() as session:
        row = project_row(session, site.tenant_id)
        assert (row.updated_by, row.updated_at) == (None, saved_at)
        # The admin's rule stays: it keeps erin out of suggestions, as a kept opt-out does.
        assert project_settings(session, site.tenant_id, "AMQ")["exclude_people"] == ["erin"]
        assert privacy.export_person(session, site.tenant_id, "carol")["project_settings"] == []


def project_row(session: Any, tenant_id: int) -> ProjectSettings:
    """The tenant's one stored project settings row."""
    return session.scalars(select(ProjectSettings).where(ProjectSettings.tenant_id == tenant_id)).one()


def test_an_erased_assignee_is_not_learned_again_when_someone_else_edits_the_issue(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Broker drops messages",
                                         "2024-01-02T00:00:00.000+0000")])  # open, assigned to bob
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert traces(site, "bob") > 0
    jobs.erase_person(site.tenant_id, "bob")
    assert traces(site, "bob") == 0

    # Carol comments: the issue's `updated` is now, though bob was assigned long before.
    _edited_by_someone_else(site, "AMQ-1", comment_by="carol")
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Contribution).where(
            Contribution.account_id == "carol")) == 1
    assert traces(site, "bob") == 0


def test_an_admin_who_only_saved_settings_is_reported_and_forgotten_when_closed(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    with site.db.session() as session:
        save_project_settings(session, site.tenant_id, "AMQ", {"purpose": "Broker work"}, "root")
    site.host.set_account_status("root", "closed")

    assert jobs.run_privacy_reporting() == 1
    reported = reported_accounts(site)
    assert "root" in reported
    with site.db.session() as session:
        assert project_row(session, site.tenant_id).updated_by is None


def test_an_account_named_only_in_a_project_rule_is_reported_and_unnamed_when_closed(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    with site.db.session() as session:
        save_project_settings(session, site.tenant_id, "AMQ", {
            "exclude_people": ["gone", "kept"], "include_people": ["gone"]}, None)
    site.host.set_account_status("gone", "closed")

    assert jobs.run_privacy_reporting() == 1
    reported = reported_accounts(site)
    assert {"gone", "kept"} <= reported
    with site.db.session() as session:
        rules = project_settings(session, site.tenant_id, "AMQ")
    assert (rules["exclude_people"], rules["include_people"]) == (["kept"], [])


def test_an_updated_account_whose_profile_is_gone_loses_its_name_and_avatar(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    with site.db.session() as session:  # the site no longer shows this profile (404)
        session.add(Person(tenant_id=site.tenant_id, account_id="ghost", display_name="Ghost",
                           avatar_url="https://avatar.example/ghost-48.png"))
    site.host.set_account_status("ghost", "updated")

    assert jobs.run_privacy_reporting() == 1
    with site.db.session() as session:
        person = session.scalars(select(Person).where(Person.account_id == "ghost")).one()
        assert (person.display_name, person.avatar_url) == (None, None)


def test_a_closed_account_is_forgotten_in_redis_for_both_products_of_the_site(
    sqlite_url: str, redis_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    wiki = make_site(sqlite_url, "confluence", redis_url=redis_url)
    with site.db.session() as session:  # indexed, each installation is one product of the site
        for n, tenant_id in enumerate((site.tenant_id, wiki.tenant_id), start=1):
            upsert_item(session, tenant_id, jira_issue_to_doc(
                v2_issue(f"AMQ-{n}", n, "Broker drops messages", "2024-01-02T00:00:00.000+0000"), ""))
    assert search.catch_up(site.db)
    with site.db.session() as session:
        assert privacy.site_tenants(session, site.tenant_id) == [site.tenant_id, wiki.tenant_id]
    _question(site, "zed", "chirino", [])
    shared = SharedAnswers(Redis.from_url(redis_url))
    for tenant_id, source in ((site.tenant_id, "jira"), (wiki.tenant_id, "confluence")):
        shared.saw(tenant_id, (source, "1"), "zed")
        shared.put(tenant_id, "zed", {(source, "1"): True}, 60.0)
    site.host.set_account_status("zed", "closed")

    assert jobs.report_personal_data(site.tenant_id)["closed"] == 1
    for tenant_id, source in ((site.tenant_id, "jira"), (wiki.tenant_id, "confluence")):
        assert shared.viewers(tenant_id, (source, "1")) == []
        assert shared.get(tenant_id, "zed", [(source, "1")]) == {}


def test_a_closed_account_redis_could_not_forget_is_erased_and_forgotten_by_the_next_report(
    sqlite_url: str, redis_url: str, make_site: Any, monkeypatch: Any
) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    site = make_site(sqlite_url, redis_url=redis_url)
    _question(site, "zed", "chirino", [])
    shared = SharedAnswers(Redis.from_url(redis_url))
    shared.saw(site.tenant_id, ("jira", "AMQ-1"), "zed")
    site.host.set_account_status("zed", "closed")

    def away(self: SharedAnswers, tenant_id: int, accounts: set[str]) -> None:
        raise RedisConnectionError("Redis is away for a moment")

    with monkeypatch.context() as patched, pytest.raises(RedisConnectionError):
        patched.setattr(SharedAnswers, "forget", away)
        jobs.report_personal_data(site.tenant_id)  # the job fails: the report is due again
    assert jobs.report_personal_data(site.tenant_id)["closed"] == 1  # reported again
    assert shared.viewers(site.tenant_id, ("jira", "AMQ-1")) == []
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Question)
                              .where(Question.asker_account_id == "zed")) == 0
