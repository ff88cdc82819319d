"""Services the jobs call: question follow-ups, answers from comments, impact and digests."""
from __future__ import annotations

from datetime import timedelta

from connect.db import utcnow
from connect.host_client import HostClient
from connect.models import Tenant
from plugin.models.social import Question
from plugin.services import questions, recognition, settings
from plugin.services.feedback import give
from tests.panels.conftest import Site


def _ask(site: Site, key: str, expert: str = "jstrachan") -> int:
    response = site.post("/api/questions", {"source": "jira", "key": key,
                                            "expert_account_id": expert, "text": "Any idea why?"})
    assert response.status_code == 201
    return response.get_json()["id"]


def _clients(site: Site):
    return lambda tenant: HostClient.for_tenant(tenant, site.host.app_key)


def test_a_comment_by_the_expert_answers_the_question(site: Site) -> None:
    key = site.keys[-1]
    question_id = _ask(site, key)
    with site.db.session() as session:
        tenant_id = site.tenant.tenant_id
        assert questions.on_comment(session, tenant_id, "jira", key, "chirino", utcnow()) == []
        assert questions.on_comment(session, tenant_id, "jira", key, "jstrachan",
                                    utcnow()) == [question_id]
        assert session.get(Question, question_id).state == "answered"
        # A second delivery of the same comment changes nothing.
        assert questions.on_comment(session, tenant_id, "jira", key, "jstrachan", utcnow()) == []


def test_an_unanswered_question_is_reminded_once_then_passed_on_then_closed(site: Site) -> None:
    key = site.keys[-1]
    question_id = _ask(site, key)
    with site.db.session() as session:
        question = session.get(Question, question_id)
        question.next_experts = ["rajdavies"]
        due_at = question.follow_up_at
    with site.db.session() as session:
        assert questions.due_followups(session, due_at - timedelta(minutes=1)) == []
        assert questions.due_followups(session, due_at) == [question_id]
        assert questions.follow_up(session, question_id, _clients(site), due_at) == "reminded"
        assert questions.follow_up(session, question_id, _clients(site), due_at) == "nothing"
    comments = site.host.comments(key)
    assert comments[-1]["author"]["accountId"] == site.host.app_account_id
    assert comments[-1]["body"]["content"][0]["content"][0]["attrs"]["id"] == "jstrachan"
    # Named, as the question named them: notifications show the mention's text.
    assert comments[-1]["body"]["content"][0]["content"][0]["attrs"]["text"] == "@james strachan"
    later = due_at + timedelta(hours=48)
    with site.db.session() as session:
        assert questions.follow_up(session, question_id, _clients(site), later) == "passed"
        question = session.get(Question, question_id)
        assert (question.expert_account_id, question.state) == ("rajdavies", "asked")
    assert site.host.comments(key)[-1]["body"]["content"][0]["content"][0]["attrs"] == \
        {"id": "rajdavies", "text": "@Rob Davies", "accessLevel": ""}
    with site.db.session() as session:
        for step in ("reminded", "unanswered"):
            later += timedelta(hours=49)
            assert questions.follow_up(session, question_id, _clients(site), later) == step
        assert questions.due_followups(session, later + timedelta(days=30)) == []


def test_a_question_is_not_passed_to_someone_who_opted_out(site: Site) -> None:
    question_id = _ask(site, site.keys[-1])
    with site.db.session() as session:
        question = session.get(Question, question_id)
        question.next_experts = ["rajdavies", "chirino"]
        question.reminded_at = utcnow()
        settings.set_preference(session, site.tenant.tenant_id, "rajdavies", True, None)
        question.follow_up_at = utcnow()
    with site.db.session() as session:
        questions.follow_up(session, question_id, _clients(site), utcnow())
        assert session.get(Question, question_id).expert_account_id == "chirino"


def test_impact_and_the_weekly_digest_count_help_answers_and_kudos(site: Site) -> None:
    key = site.keys[-1]
    reuse = site.get(f"/api/content/jira/{key}/reuse").get_json()["suggestions"]
    question_id = _ask(site, key)
    now = utcnow()
    with site.db.session() as session:
        tenant_id = site.tenant.tenant_id
        for suggestion in reuse:
            give(session, tenant_id, source="jira", key=key, project="AMQ",
                 target_item_id=suggestion["item_id"], verdict="helped", account_id="aco")
        questions.on_comment(session, tenant_id, "jira", key, "jstrachan", now)
        authors = {a for s in reuse for a in _authors(session, tenant_id, s["item_id"])}
        person = sorted(authors - {"aco"})[0]
        recognition.thank(session, tenant_id, source="jira", key=key, space=None, giver="aco",
                          receiver=person, message="cheers")
        impact = recognition.impact(session, tenant_id, person, now - timedelta(days=30))
        assert impact["items_helped"] == 1 and impact["kudos_received"] >= 2
        digest = recognition.weekly_digest(session, tenant_id, person, now.date()
                                           - timedelta(days=now.weekday()))
        assert any(k["message"] == "cheers" for k in digest["kudos"])
        assert "helped 1 item," in digest["summary"]  # one item, not "1 items"
        assert recognition.impact(session, tenant_id, "jstrachan",
                                  now - timedelta(days=1))["questions_answered"] == 1
        assert session.get(Question, question_id).state == "answered"


def _authors(session, tenant_id: int, item_id: int) -> list[str]:
    from plugin.services.feedback import authors_of

    return authors_of(session, tenant_id, item_id)


def test_eligibility_follows_people_groups_and_preferences(site: Site) -> None:
    with site.db.session() as session:
        tenant_id = site.tenant.tenant_id
        settings.save_project_settings(session, tenant_id, "AMQ", {
            "include_groups": ["broker-devs"], "exclude_people": ["chirino"]}, "admin")
        groups = {"jstrachan": {"broker-devs"}, "chirino": {"broker-devs"}}.get
        allowed = settings.eligibility(session, tenant_id, "AMQ",
                                       groups_of=lambda a: groups(a, set()))
        assert [a for a in ("jstrachan", "chirino", "aco") if allowed(a)] == ["jstrachan"]
        assert settings.is_eligible(session, tenant_id, "aco", None)
        tenant = session.get(Tenant, tenant_id)
        assert settings.project_settings(session, tenant.id, "OTHER")["include_groups"] == []
