"""Asking an expert: the same question twice is asked once; blog posts Inflow has not stored yet."""
from __future__ import annotations

import copy
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from connect.db import utcnow
from plugin.models.social import PanelEvent, Question
from plugin.services import questions
from sandbox.site import data
from tests.panels.conftest import Site

NEW_ID = "880001"
EXPERT, ASKER = (u["accountId"] for u in data.confluence_users()[:2])


def _ask(site: Site, key: str, text: str = "How does this work?") -> Any:
    return site.post("/api/questions", {"source": "confluence", "key": key,
                                        "expert_account_id": EXPERT, "text": text}, sub=ASKER)


def _count(site: Site, model: Any, *where: Any) -> int:
    with site.db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_the_same_open_question_asked_twice_is_asked_once(wiki: Site) -> None:
    key = wiki.keys[0]
    first = _ask(wiki, key)
    assert first.status_code == 201, first.get_json()
    again = _ask(wiki, key)  # a double click
    assert again.status_code == 200, again.get_json()
    assert again.get_json() == first.get_json()
    assert len(wiki.host.comments(key)) == 1
    assert _count(wiki, Question) == 1
    assert _count(wiki, PanelEvent, PanelEvent.kind == "used") == 1
    # Another question, or the same once the first was answered, is asked.
    assert _ask(wiki, key, "And why?").status_code == 201
    with wiki.db.session() as session:
        questions.on_comment(session, wiki.tenant.tenant_id, "confluence", key, EXPERT, utcnow())
    after = _ask(wiki, key)
    assert after.status_code == 201 and after.get_json()["id"] != first.get_json()["id"]
    assert len(wiki.host.comments(key)) == 3


def test_asking_on_content_not_stored_yet_comments_on_it_as_its_kind(wiki: Site) -> None:
    for n, kind in enumerate(("blogpost", "page")):
        content = copy.deepcopy(data.confluence_pages()[1])
        content["id"] = f"{NEW_ID}{n}"
        wiki.host.load_confluence_pages([content], kind=kind)
        response = _ask(wiki, content["id"])
        assert response.status_code == 201, response.get_json()
        [comment] = wiki.host.comments(content["id"])
        assert comment["id"] == response.get_json()["comment_id"]
    posted = wiki.host.calls_to("/wiki/api/v2/footer-comments", "POST")
    assert [call.json.get("blogPostId") or call.json.get("pageId") for call in posted] == \
        [f"{NEW_ID}0", f"{NEW_ID}1"]
    assert ["blogPostId" in call.json for call in posted] == [True, False]


def test_the_repeat_answer_is_in_the_api_description(app: Flask) -> None:
    """A double click answers 200 with the open question: a client reading the spec expects it."""
    spec = app.test_client().get("/api/openapi.json").get_json()
    responses = spec["paths"]["/api/questions"]["post"]["responses"]
    assert responses["200"]["content"] == responses["201"]["content"]


def test_someone_who_cannot_read_the_page_cannot_be_asked_about_it(wiki: Site) -> None:
    key = wiki.keys[0]
    wiki.host.deny(EXPERT, key)
    asked = _ask(wiki, key)
    assert asked.status_code == 422 and "expert_account_id" in asked.get_json()["errors"]
    assert wiki.host.comments(key) == []
    assert _count(wiki, Question) == 0
