"""Every state-changing JSON API call: effect in the database and on the fake host, and 4xx."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connect.db import utcnow
from plugin.matching.store import get_item
from plugin.models.content import Item
from plugin.models.social import Feedback, Kudos, PanelEvent, Question
from plugin.services import recognition
from tests.conftest import chunked
from tests.panels.conftest import Site

ASKER = "aco"
EXPERT = "jstrachan"


def _experts(site: Site, key: str, sub: str = ASKER) -> list[dict]:
    response = site.get(f"/api/content/jira/{key}/experts", sub=sub)
    assert response.status_code == 200
    return response.get_json()["experts"]


def test_ask_posts_a_comment_as_the_asker_that_mentions_the_expert(site: Site) -> None:
    key = site.keys[-1]
    assert EXPERT in [e["account_id"] for e in _experts(site, key)]
    response = site.post("/api/questions", {"source": "jira", "key": key,
                                            "expert_account_id": EXPERT,
                                            "text": "How do reconnects work here?"}, sub=ASKER)
    assert response.status_code == 201, response.get_json()
    [comment] = site.host.comments(key)
    assert comment["author"]["accountId"] == ASKER  # written as the user, not the app
    paragraph = comment["body"]["content"][0]["content"]
    assert paragraph[0] == {"type": "mention", "attrs": {"id": EXPERT, "text": "@james strachan",
                                                         "accessLevel": ""}}
    assert "How do reconnects work here?" in paragraph[1]["text"]
    with site.db.session() as session:
        question = session.get(Question, response.get_json()["id"])
        assert (question.state, question.asker_account_id, question.expert_account_id) == \
            ("asked", ASKER, EXPERT)
        assert question.comment_id == comment["id"]
        assert EXPERT not in question.next_experts and question.next_experts
    panel = site.get(f"/api/content/jira/{key}/experts", sub=ASKER).get_json()
    assert [q["state"] for q in panel["questions"]] == ["asked"]


@pytest.mark.parametrize("body, field", [
    ({"source": "jira", "key": "AMQ-1", "expert_account_id": EXPERT}, "text"),
    ({"source": "bitbucket", "key": "AMQ-1", "expert_account_id": EXPERT, "text": "help me"},
     "source"),
    ({"source": "jira", "key": "AMQ-1", "expert_account_id": "", "text": "help me"},
     "expert_account_id"),
    ({"source": "jira", "key": "AMQ-1", "expert_account_id": EXPERT, "text": "x" * 2001}, "text"),
    ({"source": "jira", "key": "AMQ-1", "expert_account_id": EXPERT, "text": " \n\t  "}, "text"),
    ({"source": "jira", "key": "AMQ-1", "expert_account_id": EXPERT, "text": "  ?\n "}, "text"),
    ({"source": "jira", "key": "AMQ-1", "expert_account_id": EXPERT, "text": "hi there",
      "admin": True}, "admin"),
])
def test_ask_with_an_invalid_body_is_422_with_field_messages(site: Site, body: dict,
                                                              field: str) -> None:
    response = site.post("/api/questions", body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert site.host.comments("AMQ-1") == []


def test_a_body_that_is_not_a_json_object_is_400(site: Site) -> None:
    for raw in (b"not json", b"[1, 2]"):
        response = site.client.post("/api/questions", data=raw, headers={
            **site.context(), "Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.get_json()["error"]


def test_a_body_over_one_mebibyte_is_413_also_where_no_body_is_read(site: Site) -> None:
    created = site.post("/api/questions", {"source": "jira", "key": site.keys[-1],
                                           "expert_account_id": EXPERT, "text": "Too big to accept?"})
    question_id = created.get_json()["id"]
    response = site.post(f"/api/questions/{question_id}/accept", {"pad": "x" * (1024 * 1024)}, sub=ASKER)
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"
    with site.db.session() as session:
        assert session.get(Question, question_id).state == "asked"


@pytest.mark.parametrize("size, status", [(1024 * 1024 + 1, 413), (1024, 200)])
def test_a_chunked_body_is_held_to_the_limit_also_where_no_body_is_read(
        site: Site, size: int, status: int) -> None:
    """A chunked body declares no length: over the limit it is refused all the same."""
    created = site.post("/api/questions", {"source": "jira", "key": site.keys[-1],
                                           "expert_account_id": EXPERT, "text": "Sent in chunks?"})
    question_id = created.get_json()["id"]
    response = site.client.post(f"/api/questions/{question_id}/accept",
                                **chunked(b"x" * size, site.context(ASKER)))
    assert response.status_code == status
    with site.db.session() as session:
        assert session.get(Question, question_id).state == ("asked" if status == 413 else "accepted")


def test_asking_yourself_is_refused(site: Site) -> None:
    response = site.post("/api/questions", {"source": "jira", "key": site.keys[-1],
                                            "expert_account_id": ASKER, "text": "me again?"})
    assert response.status_code == 422
    assert "expert_account_id" in response.get_json()["errors"]


def test_a_question_by_the_issues_id_is_the_issues_own_under_its_projects_rules(site: Site) -> None:
    """By id, a question had no project: someone the project excludes was asked, off the panel."""
    key = site.keys[-1]
    with site.db.session() as session:
        issue_id = get_item(session, site.tenant.tenant_id, "jira", key).external_id
    site.host.set_project_admin(ASKER, "AMQ")
    assert site.post("/api/admin/projects/AMQ/settings", {"exclude_people": [EXPERT]},
                     sub=ASKER).status_code == 200
    body = {"source": "jira", "key": issue_id, "expert_account_id": EXPERT, "text": "Reconnects?"}
    excluded = site.post("/api/questions", body, sub=ASKER)
    assert excluded.status_code == 422 and "expert_account_id" in excluded.get_json()["errors"]
    assert site.host.comments(key) == []
    other = next(e["account_id"] for e in _experts(site, key) if e["account_id"] != ASKER)
    asked = site.post("/api/questions", {**body, "expert_account_id": other}, sub=ASKER)
    assert asked.status_code == 201, asked.get_json()
    with site.db.session() as session:
        question = session.get(Question, asked.get_json()["id"])
        assert (question.item_key, question.project) == (key, "AMQ")
    panel = site.get(f"/api/content/jira/{key}/experts", sub=ASKER).get_json()
    assert [q["id"] for q in panel["questions"]] == [asked.get_json()["id"]]


def test_only_the_asker_can_accept_an_answer(site: Site) -> None:
    key = site.keys[-1]
    created = site.post("/api/questions", {"source": "jira", "key": key,
                                           "expert_account_id": EXPERT, "text": "Any idea?"})
    question_id = created.get_json()["id"]
    assert site.post(f"/api/questions/{question_id}/accept", {}, sub="chirino").status_code == 403
    response = site.post(f"/api/questions/{question_id}/accept", {}, sub=ASKER)
    assert response.get_json()["state"] == "accepted"
    with site.db.session() as session:
        kudos = session.scalars(select(Kudos).where(Kudos.kind == "answer")).all()
        assert [(k.from_account_id, k.to_account_id) for k in kudos] == [(ASKER, EXPERT)]
    assert site.post("/api/questions/999999/accept", {}).status_code == 404


def test_a_missing_question_is_not_found_in_the_documented_error_shape(site: Site) -> None:
    # docs/reference.md: a missing object (or another tenant's) is a 404 `not_found`, as a
    # missing route is; clients tell it from a refusal by the code.
    response = site.post("/api/questions/999999/accept", {})
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found", "message": "No such question."}


def test_two_accepts_at_once_credit_the_expert_once(site: Site) -> None:
    from plugin.models.social import Question
    from plugin.services import questions

    created = site.post("/api/questions", {"source": "jira", "key": site.keys[-1],
                                           "expert_account_id": EXPERT, "text": "Any idea?"})
    question_id = created.get_json()["id"]
    with site.db.session() as late:
        seen = late.get(Question, question_id)  # it looked before the other wrote (and holds it)
        assert seen is not None and seen.state == "asked"
        with site.db.session() as first:
            questions.accept(first, site.tenant.tenant_id, question_id, ASKER)
        assert questions.accept(late, site.tenant.tenant_id, question_id, ASKER).state == "accepted"
    with site.db.session() as session:
        assert len(session.scalars(select(Kudos).where(Kudos.kind == "answer")).all()) == 1


def test_a_person_counts_once_per_suggested_item_however_many_issues_they_say_it_on(site: Site) -> None:
    # "Helped 3 people before" counts people: the same person's verdict on other issues neither
    # adds to it nor credits its authors again.
    target = _first_reuse(site, site.keys[-1])["item_id"]
    for key in site.keys[-4:]:
        assert site.post("/api/feedback", {"source": "jira", "key": key, "target_item_id": target,
                                           "verdict": "helped"}).status_code == 200
    with site.db.session() as session:
        assert session.get(Item, target).helpful_count == 1
        credited = session.scalars(select(Kudos.to_account_id).where(Kudos.kind == "helped")).all()
        assert credited and len(credited) == len(set(credited))
    # Taking back one of the four keeps the person counted; taking back all of them does not.
    for n, key in enumerate(site.keys[-4:]):
        site.post("/api/feedback", {"source": "jira", "key": key, "target_item_id": target,
                                    "verdict": "not_relevant"})
        with site.db.session() as session:
            item = session.get(Item, target)
            assert (item.helpful_count, item.not_relevant_count) == ((1, 1) if n < 3 else (0, 1))
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Kudos).where(Kudos.kind == "helped")) == 0


def test_counts_left_by_an_earlier_release_are_counted_anew(site: Site) -> None:
    # An earlier release counted a person once per issue they said it on: two verdicts, 2.
    target = _first_reuse(site, site.keys[-1])["item_id"]
    for key in (site.keys[-1], site.keys[-2]):
        site.post("/api/feedback", {"source": "jira", "key": key, "target_item_id": target, "verdict": "helped"})
    with site.db.session() as session:
        session.get(Item, target).helpful_count = 2
    for key, counts in ((site.keys[-1], (1, 1)), (site.keys[-2], (0, 1))):
        site.post("/api/feedback", {"source": "jira", "key": key, "target_item_id": target,
                                    "verdict": "not_relevant"})
        with site.db.session() as session:
            item = session.get(Item, target)
            assert (item.helpful_count, item.not_relevant_count) == counts


def _first_reuse(site: Site, key: str, sub: str = ASKER) -> dict:
    suggestions = site.get(f"/api/content/jira/{key}/reuse", sub=sub).get_json()["suggestions"]
    assert suggestions
    return suggestions[0]


def test_helped_feedback_feeds_ranking_and_credits_the_authors(site: Site) -> None:
    key = site.keys[-1]
    target = _first_reuse(site, key)
    body = {"source": "jira", "key": key, "target_item_id": target["item_id"], "verdict": "helped"}
    assert site.post("/api/feedback", body).status_code == 200
    assert site.post("/api/feedback", body).status_code == 200  # the same verdict counts once
    with site.db.session() as session:
        item = session.get(Item, target["item_id"])
        assert (item.helpful_count, item.not_relevant_count) == (1, 0)
        credited = session.scalars(select(Kudos.to_account_id).where(Kudos.kind == "helped")).all()
        assert credited and ASKER not in credited
        assert session.scalar(select(func.count()).select_from(PanelEvent).where(
            PanelEvent.kind == "used")) == 1
    changed = site.post("/api/feedback", {**body, "verdict": "not_relevant"})
    assert changed.get_json()["verdict"] == "not_relevant"
    with site.db.session() as session:
        item = session.get(Item, target["item_id"])
        assert (item.helpful_count, item.not_relevant_count) == (0, 1)
        assert session.scalar(select(func.count()).select_from(Kudos)) == 0
        assert session.scalar(select(Feedback.verdict)) == "not_relevant"
    panel = _first_reuse(site, key)
    assert panel["item_id"] != target["item_id"] or panel["verdict"] == "not_relevant"


def test_feedback_on_an_unknown_suggestion_is_422(site: Site) -> None:
    response = site.post("/api/feedback", {"source": "jira", "key": site.keys[-1],
                                           "target_item_id": 10**6, "verdict": "helped"})
    assert response.status_code == 422
    assert "target_item_id" in response.get_json()["errors"]
    bad = site.post("/api/feedback", {"source": "jira", "key": site.keys[-1],
                                      "target_item_id": "1", "verdict": "meh"})
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"target_item_id", "verdict"}


def test_link_as_duplicate_creates_a_real_issue_link_as_the_user(site: Site) -> None:
    key = site.keys[-1]
    target = _first_reuse(site, key)
    response = site.post("/api/links", {"key": key, "target_key": target["key"],
                                        "link_type": "duplicate"})
    assert response.status_code == 201
    assert site.host.links == [{"type": "Duplicate", "inward": target["key"], "outward": key,
                                "account_id": ASKER, "comment": None}]
    _issuelink_event_applied(site, key, target["key"])
    # Jira's link event read both ends again: the viewed issue lists the target, which is no
    # longer offered as a suggestion to link (nor to link twice).
    with site.db.session() as session:
        assert target["key"] in get_item(session, site.tenant.tenant_id, "jira", key).links
    shown = [s["key"] for s in site.get(f"/api/content/jira/{key}/reuse", sub=ASKER).get_json()["suggestions"]]
    assert shown and target["key"] not in shown
    invalid = site.post("/api/links", {"key": key, "target_key": "not a key",
                                       "link_type": "clones"})
    assert invalid.status_code == 422
    assert set(invalid.get_json()["errors"]) == {"target_key", "link_type"}
    assert len(site.host.links) == 1


def _issuelink_event_applied(site: Site, source_key: str, target_key: str) -> None:
    """Jira's issuelink_created event, stored and applied: both ends are read again."""
    from connect.host_client import HostClient
    from connect.models import Tenant, WebhookEvent
    from plugin.pipeline.events import process_event

    ids = [site.host.issue_view(k)["id"] for k in (source_key, target_key)]
    with site.db.session() as session:
        event = WebhookEvent(tenant_id=site.tenant.tenant_id, event_key="link-1", event_type="issuelink_created",
                             product="jira", item_ref=None, event_ts=int(utcnow().timestamp() * 1000),
                             payload={"webhookEvent": "issuelink_created", "issueLink": {
                                 "id": 1, "sourceIssueId": ids[0], "destinationIssueId": ids[1]}})
        session.add(event)
        session.flush()
        event_id = event.id
    with site.db.session() as session:
        assert process_event(session, event_id, lambda tenant: HostClient.for_tenant(
            session.get(Tenant, tenant.id), site.host.app_key, auth_server=site.host.url))


def test_linking_an_issue_the_user_cannot_see_is_refused_by_the_host(site: Site) -> None:
    key, hidden = site.keys[-1], site.keys[0]
    site.host.deny(ASKER, hidden)
    response = site.post("/api/links", {"key": key, "target_key": hidden, "link_type": "relates"})
    assert response.status_code == 403
    assert site.host.links == []


def test_thanks_are_stored_and_self_thanks_are_422(site: Site) -> None:
    key = site.keys[-1]
    response = site.post("/api/kudos", {"source": "jira", "key": key, "to_account_id": EXPERT,
                                        "message": "Thanks for the fix!"})
    assert response.status_code == 201
    with site.db.session() as session:
        kudos = session.scalars(select(Kudos)).one()
        assert (kudos.from_account_id, kudos.to_account_id, kudos.message, kudos.item_key) == \
            (ASKER, EXPERT, "Thanks for the fix!", key)
    itself = site.post("/api/kudos", {"source": "jira", "key": key, "to_account_id": ASKER})
    assert itself.status_code == 422
    assert "to_account_id" in itself.get_json()["errors"]


def test_thanks_are_rate_limited_per_pair_per_item_and_per_giver(site: Site) -> None:
    key = site.keys[-1]
    body = {"source": "jira", "key": key, "to_account_id": EXPERT, "message": ""}
    assert site.post("/api/kudos", body).status_code == 201
    again = site.post("/api/kudos", body)
    assert again.status_code == 429 and "today" in again.get_json()["message"]
    for n in range(recognition.PER_GIVER_PER_DAY - 1):
        assert site.post("/api/kudos", {**body, "key": site.keys[n]}).status_code == 201
    over = site.post("/api/kudos", {**body, "key": site.keys[-2]})
    assert over.status_code == 429
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Kudos)) == \
            recognition.PER_GIVER_PER_DAY
        # A day later the giver may thank again.
        for kudos in session.scalars(select(Kudos)):
            kudos.created_at = utcnow() - timedelta(days=1, minutes=1)
    assert site.post("/api/kudos", body).status_code == 201


def test_click_events_are_recorded_for_adoption(site: Site) -> None:
    key = site.keys[-1]
    response = site.post("/api/events", {"source": "jira", "key": key, "panel": "reuse",
                                         "kind": "clicked", "target": site.keys[0]})
    assert response.status_code == 204
    with site.db.session() as session:
        event = session.scalars(select(PanelEvent).where(PanelEvent.kind == "clicked")).one()
        assert (event.project, event.target) == ("AMQ", site.keys[0])
    assert site.post("/api/events", {"source": "jira", "key": key, "panel": "x",
                                     "kind": "shown"}).status_code == 422


def test_clicks_count_only_on_real_items_the_viewer_may_see(site: Site) -> None:
    """A made-up key (or one hidden from the viewer) added reuse clicks to any project's board."""
    hidden = site.keys[-2]
    site.host.deny(ASKER, hidden)
    for key in ("AMQ-999999", "ZZZ-1", hidden):
        response = site.post("/api/events", {"source": "jira", "key": key, "panel": "reuse",
                                             "kind": "clicked", "target": site.keys[0]}, sub=ASKER)
        assert response.status_code == 422 and "key" in response.get_json()["errors"], key
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(PanelEvent).where(
            PanelEvent.kind == "clicked")) == 0


@pytest.mark.parametrize("path", ["/api/questions", "/api/questions/1/accept", "/api/feedback",
                                  "/api/links", "/api/kudos", "/api/events", "/api/me/preferences",
                                  "/api/me/erase", "/api/admin/projects/AMQ/settings"])
def test_every_post_needs_a_context_jwt(site: Site, path: str) -> None:
    assert site.client.post(path, json={}).status_code == 401
    qsh_token = site.tenant.headers("GET", "/jira/panels/experts")  # an iframe token, wrong qsh
    assert site.client.post(path, json={}, headers=qsh_token).status_code == 401


def test_a_viewer_never_sees_suggestions_they_may_not_browse(site: Site) -> None:
    key = site.keys[-1]
    first = _first_reuse(site, key, sub="chirino")
    site.host.deny("rajdavies", first["key"])
    hidden_from = site.get(f"/api/content/jira/{key}/reuse", sub="rajdavies").get_json()
    assert first["key"] not in [s["key"] for s in hidden_from["suggestions"]]
    for expert in _experts(site, key, sub="rajdavies"):
        assert first["key"] not in [e["key"] for e in expert["evidence"]]
    with site.db.session() as session:
        assert get_item(session, site.tenant.tenant_id, "jira", first["key"]) is not None


def test_nothing_about_an_issue_comes_back_to_a_viewer_who_may_not_see_it(site: Site) -> None:
    key = site.keys[-1]
    site.post("/api/questions", {"source": "jira", "key": key, "expert_account_id": EXPERT,
                                 "text": "Secret question?"})
    site.host.deny("mallory", key)
    for panel in ("experts", "reuse", "contributors"):
        # The answer an issue that does not exist gets: nothing tells the two apart.
        denied = site.get(f"/api/content/jira/{key}/{panel}", sub="mallory")
        missing = site.get(f"/api/content/jira/AMQ-999999/{panel}", sub="mallory")
        assert denied.status_code == missing.status_code == 404, panel
        assert denied.get_json() == {"error": "not_found", "message": f"No issue {key} that you may see."}
        assert missing.get_json()["message"] == "No issue AMQ-999999 that you may see."
    # (An issue view's own panels are signed by Jira for people who may browse the issue: there
    # the issue itself is not asked about again; see test_stored.)


def test_a_panel_asked_for_by_the_issues_id_does_not_escape_its_projects_settings(site: Site) -> None:
    """By id (or in lower case) the issue had no project: excluded people and evidence came back."""
    key = site.stored()
    with site.db.session() as session:
        issue_id = get_item(session, site.tenant.tenant_id, "jira", key).external_id
    excluded = _experts(site, key)[0]["account_id"]
    site.host.set_project_admin(ASKER, "AMQ")
    assert site.post("/api/admin/projects/AMQ/settings", {
        "exclude_people": [excluded], "privacy": {"show_evidence": False}}, sub=ASKER).status_code == 200
    shown = _experts(site, key)
    assert excluded not in [e["account_id"] for e in shown] and not any(e["evidence"] for e in shown)
    for other in (issue_id, key.lower()):
        response = site.get(f"/api/content/jira/{other}/experts")
        assert response.status_code == 404, (other, response.get_json())
        assert response.get_json()["error"] == "not_found"


def test_content_of_the_other_product_is_refused_before_calling_the_host(site: Site) -> None:
    calls = len(site.host.calls)
    response = site.post("/api/questions", {"source": "confluence", "key": "123",
                                            "expert_account_id": EXPERT, "text": "Hello?"})
    assert response.status_code == 422 and "source" in response.get_json()["errors"]
    assert site.get("/api/content/confluence/123/experts").status_code == 404
    assert len(site.host.calls) == calls
    # Thanks, verdicts and clicks are given on the viewed item, which is this site's product.
    item = _first_reuse(site, site.keys[-1])["item_id"]
    for path, body in (("/api/kudos", {"source": "confluence", "key": "123", "to_account_id": EXPERT}),
                       ("/api/feedback", {"source": "confluence", "key": "123", "target_item_id": item,
                                          "verdict": "helped"}),
                       ("/api/events", {"panel": "reuse", "kind": "clicked", "source": "confluence",
                                        "key": "123"})):
        refused = site.post(path, body)
        assert refused.status_code == 422 and "source" in refused.get_json()["errors"], path


def test_a_question_the_host_rejects_is_a_4xx_that_says_why_and_stores_nothing(site: Site) -> None:
    key = site.keys[-1]
    site.host.inject(f"/rest/api/3/issue/{key}/comment", 400)  # e.g. a comment Jira will not take
    response = site.post("/api/questions", {"source": "jira", "key": key, "expert_account_id": EXPERT,
                                            "text": "How do reconnects work here?"}, sub=ASKER)
    assert response.status_code == 422
    assert response.get_json()["error"] == "host_rejected"
    assert response.get_json()["host_messages"] == ["Injected 400"]
    # The panels show the message: what the host said is in it, not only beside it.
    assert response.get_json()["message"] == "The product rejected this request: Injected 400"
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Question)) == 0


def test_a_site_still_rate_limiting_after_retries_is_a_503_with_when_to_retry(site: Site) -> None:
    from connect.host_client import PACE

    site.host.inject("/rest/api/3/issueLink", 429, retry_after=120)  # longer than a request waits
    try:
        response = site.post("/api/links", {"key": site.keys[-1], "target_key": site.keys[0],
                                            "link_type": "relates"})
    finally:
        PACE.clear()  # the site's pause is this process's: later tests call the same site
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "120"
    assert response.get_json()["error"] == "host_busy"


def test_no_one_unknown_to_the_site_can_be_asked_or_thanked(site: Site) -> None:
    key = site.keys[-1]
    asked = site.post("/api/questions", {"source": "jira", "key": key, "expert_account_id": "nobody",
                                         "text": "hello there"}, sub=ASKER)
    assert asked.status_code == 422 and "expert_account_id" in asked.get_json()["errors"]
    thanked = site.post("/api/kudos", {"source": "jira", "key": key, "to_account_id": "nobody-at-all",
                                       "message": "thanks"}, sub=ASKER)
    assert thanked.status_code == 422 and "to_account_id" in thanked.get_json()["errors"]
    assert site.host.comments(key) == []  # nothing was posted as the asker
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Kudos)) == 0


def test_a_panel_turned_off_takes_no_questions_verdicts_thanks_or_clicks(site: Site) -> None:
    key = site.keys[-1]
    [target, *_] = site.get(f"/api/content/jira/{key}/reuse").get_json()["suggestions"]
    site.host.set_project_admin("chirino", "AMQ")
    off = {"panels": {"experts": False, "reuse": False, "contributors": False}}
    assert site.post("/api/admin/projects/AMQ/settings", off, sub="chirino").status_code == 200
    for path, body in (
            ("/api/questions", {"expert_account_id": EXPERT, "text": "How do reconnects work?"}),
            ("/api/feedback", {"target_item_id": target["item_id"], "verdict": "helped"}),
            ("/api/kudos", {"to_account_id": EXPERT, "message": "Thanks!"}),
            ("/api/events", {"panel": "reuse", "kind": "clicked", "target": target["key"]})):
        response = site.post(path, {"source": "jira", "key": key, **body})
        assert response.status_code == 403, (path, response.get_json())
        assert "turned" in response.get_json()["message"]
    assert site.host.comments(key) == []
    with site.db.session() as session:
        assert [session.scalar(select(func.count()).select_from(model))
                for model in (Question, Feedback, Kudos)] == [0, 0, 0]
        assert session.scalar(select(func.count()).select_from(PanelEvent).where(
            PanelEvent.kind == "clicked")) == 0


def test_someone_who_cannot_see_the_issue_or_page_cannot_be_asked_about_it(site: Site) -> None:
    """Mentioned where they may not look, they could never answer: refused, nothing posted."""
    key = site.keys[-1]
    site.host.deny(EXPERT, key)
    asked = site.post("/api/questions", {"source": "jira", "key": key, "expert_account_id": EXPERT,
                                         "text": "How do reconnects work here?"}, sub=ASKER)
    assert asked.status_code == 422 and "expert_account_id" in asked.get_json()["errors"]
    assert site.host.comments(key) == []
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Question)) == 0
