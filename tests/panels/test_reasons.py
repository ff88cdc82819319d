"""Panels show why: reuse reasons and marked snippets (escaped), experts' concrete work, old rows too."""
from __future__ import annotations

import copy
import json
import re
from typing import Any

from sqlalchemy import select

from plugin import search
from plugin.content.normalize import jira_issue_to_doc
from plugin.matching.precompute import refresh_suggestions, stored_suggestions
from plugin.matching.store import get_item, upsert_item
from plugin.models.content import StoredSuggestion
from plugin.models.social import Question
from plugin.services import panels
from plugin.services.permissions import CACHE
from tests.panels.conftest import VIEWER, Site
from tests.panels.test_pages import hostile  # noqa: F401


def _snippets(html: str) -> list[str]:
    return re.findall(r'<div class="snippet">(.*?)</div>', html, re.S)


def test_hostile_text_is_escaped_inside_the_marked_snippet(site: Site, hostile: list[str]) -> None:  # noqa: F811
    html = site.page(f"/jira/panels/reuse?issueKey={hostile[1]}&projectKey=AMQ", sub="chirino").get_data(True)
    assert "<script>alert" not in html and "<img src=x" not in html
    twin = next(s for s in _snippets(html) if "kahadb" in s)
    assert "<mark>kahadb</mark>" in twin and "&lt;" in twin
    # Nothing but <mark> tags in the snippet: the rest is escaped text.
    assert set(re.findall(r"<(/?\w+)", twin)) == {"mark", "/mark"}
    assert 'class="meta why">Why: ' in html


def test_the_api_returns_plain_snippets_whose_marks_point_at_matched_words(site: Site,
                                                                           hostile: list[str]) -> None:  # noqa: F811
    found = site.get(f"/api/content/jira/{hostile[1]}/reuse", sub="chirino").get_json()["suggestions"]
    assert found
    for s in found:
        assert isinstance(s["reasons"], list) and all(isinstance(r, str) for r in s["reasons"])
        marks = s["snippet_marks"]
        assert marks == sorted(marks) and all(0 <= a < b <= len(s["snippet"]) for a, b in marks)
        assert all(b <= c for (_, b), (c, _) in zip(marks, marks[1:], strict=False))
        assert all(re.fullmatch(r"[^\W_]+", s["snippet"][a:b]) for a, b in marks)
        assert bool(marks) == bool(s["snippet"])
    twin = next(s for s in found if s["key"] == hostile[0])
    assert '<script>alert("x")</script>' in twin["snippet"]  # JSON carries plain text, unescaped
    assert "kahadb" in [twin["snippet"][a:b] for a, b in twin["snippet_marks"]]
    assert any(r.startswith("shares ") for r in twin["reasons"]) and twin["shared_terms"]


def test_experts_name_their_work_and_the_questions_they_answered_here(site: Site) -> None:
    key = site.keys[-1]
    first = site.get(f"/api/content/jira/{key}/experts").get_json()["experts"][0]
    with site.db.session() as session:
        session.add(Question(tenant_id=site.tenant.tenant_id, source="jira", item_key=site.keys[0], project="AMQ",
                             asker_account_id="someone", expert_account_id=first["account_id"], text="How?",
                             state="answered"))
    person = next(e for e in site.get(f"/api/content/jira/{key}/experts").get_json()["experts"]
                  if e["account_id"] == first["account_id"])
    assert person["answered_here"] == 1 and person["work"].endswith("; answered 1 question here")
    assert all(ev["key"] in person["work"] for ev in person["evidence"])
    html = site.page(f"/jira/panels/experts?issueKey={key}&projectKey=AMQ").get_data(True)
    assert "answered 1 question here" in html
    ev = person["evidence"][0]
    assert re.search(rf'<a href="{re.escape(ev["url"])}"[^>]*>{ev["key"]}</a>', html)


def test_rows_stored_in_the_old_format_still_render(site: Site) -> None:
    key = site.keys[-1]
    with site.db.session() as session:
        item = get_item(session, site.tenant.tenant_id, "jira", key)
        refresh_suggestions(session, site.tenant.tenant_id, item.id)
        for row in session.scalars(select(StoredSuggestion).where(StoredSuggestion.item_id == item.id)):
            old = [{k: v for k, v in entry.items() if k not in ("snippet_marks", "shared_terms", "answered_here")}
                   for entry in row.payload]
            if row.kind == "reuse":
                old = [{**entry, "reasons": ["similar title", "similar text"], "snippet": "x" * 300}
                       for entry in old]
            # And a field from a later release, which this one must ignore rather than fail on.
            row.payload = [{**entry, "from_a_later_release": 1} for entry in old]
    for panel in ("reuse", "experts"):
        response = site.page(f"/jira/panels/{panel}?issueKey={key}&projectKey=AMQ")
        assert response.status_code == 200
        assert site.get(f"/api/content/jira/{key}/{panel}").status_code == 200
    html = site.page(f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ").get_data(True)
    assert "Why: similar title; similar text" in html and "x" * 177 + "..." in html
    data = site.get(f"/api/content/jira/{key}/reuse").get_json()["suggestions"]
    assert data[0]["snippet_marks"] == [] and data[0]["reasons"] == ["similar title", "similar text"]


def test_an_experts_summary_names_the_kind_of_work_it_counts() -> None:
    from plugin.matching.experts import Evidence, ExpertSuggestion
    from plugin.services.panels import _summary

    def expert(*sources: str) -> ExpertSuggestion:
        evidence = [Evidence(n, source, f"K-{n}", "t", None, "assignee") for n, source in enumerate(sources)]
        return ExpertSuggestion("acc", "Ann", None, 1.0, f"{len(sources)} similar", evidence)

    # On a Confluence page, work on Jira issues is counted as issues, not pages.
    assert _summary(expert("jira", "jira"), "confluence") == "Was assigned 2 similar issues"
    assert _summary(expert("confluence"), "jira") == "Was assigned 1 similar page"
    assert _summary(expert("jira", "confluence"), "jira") == "Was assigned 2 similar items"
    # With the work line after it, which names what each did, the summary does not say it first.
    assert _summary(expert("jira", "jira"), "jira", verb=False) == "Worked on 2 similar issues"


def test_an_expert_line_names_what_they_did_once(site: Site) -> None:
    key = site.keys[-1]
    people = site.get(f"/api/content/jira/{key}/experts").get_json()["experts"]
    assert people and all(p["summary"].startswith("Worked on ") and p["work"] for p in people)
    html = site.page(f"/jira/panels/experts?issueKey={key}&projectKey=AMQ").get_data(True)
    lines = re.findall(r'<div class="meta evidence">([^<]*)', html)
    assert lines and all(line.startswith("Worked on ") for line in lines), lines


def _link(site: Site, key: str, *linked: str) -> None:
    with site.db.session() as session:
        get_item(session, site.tenant.tenant_id, "jira", key).links = list(linked)


def _reasons(site: Site, key: str, sub: str = VIEWER) -> dict[str, list[str]]:
    CACHE.clear()
    found = site.get(f"/api/content/jira/{key}/reuse", sub=sub).get_json()["suggestions"]
    return {s["key"]: s["reasons"] for s in found}


def test_a_stored_reason_never_names_a_suggestion_hidden_from_the_viewer(site: Site) -> None:
    """Stored reasons are written for no viewer: "linked to X, also suggested" may name an X
    that this viewer's permissions leave out of the list."""
    key = site.stored()
    with site.db.session() as session:
        item = get_item(session, site.tenant.tenant_id, "jira", key)
        first, second = [s.key for s in stored_suggestions(session, site.tenant.tenant_id, item.id)["reuse"][:2]]
    _link(site, first, second)
    site.stored()
    assert f"linked to {second}, also suggested" in _reasons(site, key)[first]
    site.host.deny(VIEWER, second)
    shown = _reasons(site, key)
    assert second not in shown and first in shown
    assert not any(second in reason for reasons in shown.values() for reason in reasons), shown
    html = site.page(f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ").get_data(True)
    assert first in html and second not in html


def test_a_reason_never_names_a_linked_issue_hidden_from_the_viewer(site: Site) -> None:
    """The viewed issue's links are not checked with its suggestions: "both linked to X" may
    name an X the viewer may not see (Jira does not show them that link)."""
    key, hidden = site.keys[-1], site.keys[0]
    first = next(iter(_reasons(site, key)))
    _link(site, first, hidden)
    _link(site, key, hidden)
    site.host.deny(VIEWER, hidden)
    for stored in (False, True):
        if stored:
            site.stored()
        assert f"both linked to {hidden}" in _reasons(site, key, sub="chirino")[first]
        shown = _reasons(site, key)
        assert first in shown and not any(hidden in reason for reason in shown[first]), shown


def _counted(text: str) -> int:
    return int(re.search(r"(\d+) similar", text).group(1))


def test_a_stored_experts_count_is_of_the_work_the_viewer_may_see(site: Site) -> None:
    """Stored experts were ranked on every similar item: their "N similar" counted items the
    viewer may not see, and named roles they had only there."""
    key = site.stored()
    with site.db.session() as session:
        item = get_item(session, site.tenant.tenant_id, "jira", key)
        stored = stored_suggestions(session, site.tenant.tenant_id, item.id)["experts"]
    expert = max((e for e in stored if e.account_id != VIEWER), key=lambda e: _counted(e.reason))
    seen = {ev.key for ev in expert.evidence}
    assert _counted(expert.reason) > len(seen)
    for other in set(site.keys) - seen - {key}:
        site.host.deny(VIEWER, other)
    CACHE.clear()
    people = site.get(f"/api/content/jira/{key}/experts").get_json()["experts"]
    shown = next(p for p in people if p["account_id"] == expert.account_id)
    assert {ev["key"] for ev in shown["evidence"]} <= seen
    assert _counted(shown["summary"]) <= len(seen) and _counted(shown["reason"]) <= len(seen), shown
    roles = {ev["role"] for ev in shown["evidence"]}
    assert set(shown["reason"].split(" as ")[1].split(";")[0].split(", ")) <= roles, shown
    html = site.page(f"/jira/panels/experts?issueKey={key}&projectKey=AMQ").get_data(True)
    assert f"{_counted(expert.reason)} similar" not in html


SECRET = "the staging root password is hunter2"


def test_a_restricted_comment_is_never_quoted_or_credited(site: Site,
                                                         activemq_issues: list[dict[str, Any]]) -> None:
    """A Jira comment restricted to a role or group is hidden from everyone else who may browse
    its issue: no snippet, shared word or contributor may come from it."""
    key = site.keys[-1]
    viewed = next(i for i in activemq_issues if i["key"] == key)
    twin = copy.deepcopy(viewed)
    twin["id"], twin["key"] = "99000001", "AMQ-9001"
    fields = twin["fields"]
    restricted = {"id": "99000002", "author": {"accountId": "hiram", "displayName": "Hiram Chirino"},
                  "created": fields["created"], "visibility": {"type": "role", "value": "Administrators"},
                  "body": f"{SECRET} whenever {fields['summary']}"}
    fields["description"], fields["comment"] = "", {"comments": [restricted]}
    fields["reporter"] = fields["creator"] = fields["assignee"] = {"accountId": "chirino"}
    site.host.load_jira_issues([twin])
    with site.db.session() as session:
        upsert_item(session, site.tenant.tenant_id, jira_issue_to_doc(twin, site.tenant.base_url))
    assert search.catch_up(site.db)
    found = site.get(f"/api/content/jira/{key}/reuse").get_json()["suggestions"]
    shown = next(s for s in found if s["key"] == "AMQ-9001")
    assert "hunter2" not in json.dumps(shown) and "staging" not in shown["shared_terms"], shown
    people = site.get("/api/content/jira/AMQ-9001/contributors").get_json()["contributors"]
    assert people and "hiram" not in [p["account_id"] for p in people]


CHECKS = "/rest/api/3/permissions/check"


def test_a_reason_naming_a_linked_issue_costs_no_second_host_call(site: Site) -> None:
    """The issue "both linked to X" names is checked with the item and its suggestions, in the
    one bulk call of the view (and so warmed with them), not in a call of its own after it."""
    key, linked = site.keys[-1], site.keys[0]
    first = next(iter(_reasons(site, key)))
    _link(site, first, linked)
    _link(site, key, linked)
    for stored in (False, True):
        if stored:
            site.stored()
        before = len(site.host.calls_to(CHECKS, "POST"))
        assert f"both linked to {linked}" in _reasons(site, key)[first]
        assert len(site.host.calls_to(CHECKS, "POST")) - before == 1, stored
    with site.db.session() as session:  # what the worker warms for the item's viewers
        item = get_item(session, site.tenant.tenant_id, "jira", key)
        assert linked in {row.key for row in panels.checked_items(session, site.tenant.tenant_id, item.id)}
