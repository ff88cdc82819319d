"""State-changing panel actions: ask, accept, feedback, link, thank, click events."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, g, jsonify

from connect.auth import get_db, require_jwt
from plugin import hooks
from plugin.api.common import load, register_errors
from plugin.content.model import ItemDoc
from plugin.matching.store import get_item
from plugin.models.content import Item
from plugin.models.social import Question
from plugin.schemas.actions import (
    FeedbackSchema,
    KudosSchema,
    LinkSchema,
    PanelEventSchema,
    QuestionSchema,
)
from plugin.services import adoption, feedback, panels, questions, recognition
from plugin.services.errors import Refused
from plugin.services.panels import names_of
from plugin.services.people import is_known
from plugin.services.settings import project_settings
from plugin.views.common import (
    as_viewer,
    eligible,
    fetcher,
    people,
    project_of,
    visible,
    visible_for,
)

log = logging.getLogger(__name__)

bp = Blueprint("api_actions", __name__, url_prefix="/api")
register_errors(bp)

LINK_TYPES = {"duplicate": "Duplicate", "relates": "Relates"}
NO_SUCH_ITEM = "This site has no such issue or page that Inflow can see."


def _viewer() -> str:
    if not g.account_id:
        raise Refused(403, "Log in to do this.")
    return g.account_id


def _same_product(source: str) -> None:
    """Content of the other product is not on this site: refuse it before any host call."""
    if g.tenant.product_type in ("jira", "confluence") and source != g.tenant.product_type:
        raise Refused(422, f"This is a {g.tenant.product_type} site.", "source")


def _on_site(session: Any, source: str, key: str) -> Item | ItemDoc:
    """The item a request is about: stored, else as the site reads it; 422 when it has none.

    A made-up key or space would count on a board and in impact, and go around the once per
    item limits; an id and a key are one item, under its own key.
    """
    item = get_item(session, g.tenant.id, source, key)
    found = item if item is not None else fetcher(source, key)()
    if found is None:
        raise Refused(422, NO_SUCH_ITEM, "key")
    return found


def _visible(*items: Item | ItemDoc) -> list[Any]:
    """Those of the items the viewer may see, fetched or stored (each checked by its product)."""
    check: panels.Visible = visible()
    return check(list(items))


def _seen(allowed: list[Any], item: Item | ItemDoc) -> bool:
    return any(i is item for i in allowed)


def _viewable(session: Any, source: str, key: str) -> Item | ItemDoc:
    """The item a request is about, if real and the viewer may see it; else 422 on `key`."""
    found = _on_site(session, source, key)
    # The site reads items as the app: one hidden from the viewer answers as a missing one.
    if not _seen(_visible(found), found):
        raise Refused(422, NO_SUCH_ITEM, "key")
    return found


def _next_experts(session: Any, tenant_id: int, source: str, key: str, project: str | None,
                  expert: str) -> list[str]:
    """Who to pass the question to if the expert does not answer: the other suggestions."""
    data = panels.experts(session, tenant_id, source, key, project, g.account_id, visible(),
                          eligible(session, project), fetcher(source, key), record=False)
    return [p["account_id"] for p in data["experts"] if p["account_id"] != expert]


@bp.post("/questions")
@require_jwt(context=True)
def ask_question() -> Any:
    """Post the question as the viewer's comment mentioning the expert, and track it."""
    body = load(QuestionSchema())
    asker = _viewer()
    source = body["source"]
    _same_product(source)
    with get_db().session() as session:
        tenant_id = g.tenant.id
        expert = body["expert_account_id"]
        # The item under its own key: asked by an issue's id, the question had no project, so
        # the project's people rules let anyone be asked, and its panel never listed it.
        item = _viewable(session, source, body["key"])
        key = item.key
        _turned_on(session, "experts", source, key)
        project = project_of(source, key, session)
        # The same question asked again while open (a double click) is the one already asked.
        asked = questions.open_question(session, tenant_id, source=source, key=key,
                                        asker_account_id=asker, expert_account_id=expert,
                                        text=body["text"])
        if asked is not None:
            return _question_json(session, asked), 200
        # Only someone who worked on this site: the question is the asker's comment mentioning them.
        if not is_known(session, tenant_id, expert) or not eligible(session, project)(expert):
            raise Refused(422, "This person cannot be asked here.", "expert_account_id")
        # Mentioned where they may not look, they would never see the question nor answer it.
        if not visible_for(expert)([item]):
            raise Refused(422, "This person cannot see this issue or page.", "expert_account_id")
        name = names_of(session, tenant_id, {expert}, people(session))[expert]
        question = questions.ask(
            session, tenant_id, source=source, key=key, project=project,
            asker_account_id=asker, expert_account_id=expert, expert_name=name,
            text=body["text"], client=as_viewer(),
            next_experts=_next_experts(session, tenant_id, source, key, project, expert))
        adoption.record(session, tenant_id, "experts", "used", source, key, project, asker,
                        target=expert)
        return _question_json(session, question, name), 201


def _question_json(session: Any, question: Question, name: str | None = None) -> Any:
    """The question as the ask answers it: its id, state, expert and comment."""
    expert = question.expert_account_id
    if name is None:
        name = names_of(session, question.tenant_id, {expert}, people(session))[expert]
    return jsonify({"id": question.id, "state": question.state,
                    "expert": {"account_id": expert, "name": name},
                    "comment_id": question.comment_id})


@bp.post("/questions/<int:question_id>/accept")
@require_jwt(context=True)
def accept_answer(question_id: int) -> Any:
    """The asker marks the answer accepted."""
    viewer = _viewer()
    with get_db().session() as session:
        question = questions.accept(session, g.tenant.id, question_id, viewer)
        return jsonify({"id": question.id, "state": question.state})


@bp.post("/feedback")
@require_jwt(context=True)
def give_feedback() -> Any:
    """Helped / Not relevant on a suggestion; the item's stored suggestions are ranked again."""
    body = load(FeedbackSchema())
    viewer = _viewer()
    _same_product(body["source"])
    with get_db().session() as session:
        viewed = _judged(session, body["source"], body["key"], body["target_item_id"])
        _turned_on(session, "reuse", body["source"], viewed.key)
        row = feedback.give(session, g.tenant.id, source=body["source"], key=viewed.key,
                            project=project_of(body["source"], viewed.key, session),
                            target_item_id=body["target_item_id"], verdict=body["verdict"],
                            account_id=viewer)
        answer = {"target_item_id": row.target_item_id, "verdict": row.verdict}
        stored = viewed.id if isinstance(viewed, Item) else None  # one not stored has none yet
    if stored is not None:  # once committed: the refresh ranks on the new counts
        _refresh_ranking(g.tenant.id, stored)
    return jsonify(answer)


def _judged(session: Any, source: str, key: str, target_item_id: int) -> Item | ItemDoc:
    """The item a verdict is said on, if real and the viewer may see both it and the suggestion.

    Each verdict is a "used" event on its item's board and credits the suggestion's authors: a
    made-up key or an item hidden from the viewer would count. A hidden one answers as a missing
    one, so neither existence is told.
    """
    target = feedback.suggestion(session, g.tenant.id, target_item_id)
    viewed = _on_site(session, source, key)
    allowed = _visible(viewed, target)  # one host call per product, cached from the panel's
    if not _seen(allowed, viewed):
        raise Refused(422, NO_SUCH_ITEM, "key")
    if not _seen(allowed, target):
        raise Refused(422, feedback.UNKNOWN_SUGGESTION, "target_item_id")
    return viewed

def _turned_on(session: Any, panel: str, source: str, key: str) -> None:
    """Refuse an action of a panel its project's admin turned off (from a page opened before)."""
    if not project_settings(session, g.tenant.id, project_of(source, key, session))["panels"][panel]:
        raise Refused(403, panels.TURNED_OFF)


def _refresh_ranking(tenant_id: int, item_id: int) -> None:
    """Rank the item's suggestions again on the counts a verdict changed (with Redis, soon)."""
    try:
        hooks.refresh_rankings(current_app._get_current_object(), tenant_id, [item_id])  # type: ignore[attr-defined]
    except Exception:
        # The verdict is stored and counted: the item's next refresh ranks on it, so the viewer
        # is not told their verdict failed.
        log.exception("tenant %s: refresh of item %s after a verdict failed", tenant_id, item_id)


@bp.post("/links")
@require_jwt(context=True)
def link_issues() -> Any:
    """Create a real Jira issue link, as the viewer: this issue duplicates / relates to target."""
    body = load(LinkSchema())
    viewer = _viewer()
    _same_product("jira")
    if body["key"] == body["target_key"]:
        raise Refused(422, "An issue cannot be linked to itself.", "target_key")
    as_viewer().request("POST", "/rest/api/3/issueLink", json={
        "type": {"name": LINK_TYPES[body["link_type"]]},
        "outwardIssue": {"key": body["key"]}, "inwardIssue": {"key": body["target_key"]}})
    with get_db().session() as session:
        adoption.record(session, g.tenant.id, "reuse", "used", "jira", body["key"],
                        project_of("jira", body["key"]), viewer, target=body["target_key"])
    return jsonify({"key": body["key"], "target_key": body["target_key"],
                    "link_type": body["link_type"]}), 201


@bp.post("/kudos")
@require_jwt(context=True)
def give_kudos() -> Any:
    """Thank a contributor (no self-thanks; daily limits)."""
    body = load(KudosSchema())
    giver = _viewer()
    _same_product(body["source"])
    with get_db().session() as session:
        if not is_known(session, g.tenant.id, body["to_account_id"]):
            raise Refused(422, "Inflow knows no one by this account on this site.", "to_account_id")
        found = _viewable(session, body["source"], body["key"])
        space, key = found.space, found.key  # the item's own key: an id or other spelling is one item
        _turned_on(session, "contributors", body["source"], key)
        kudos = recognition.thank(session, g.tenant.id, source=body["source"], key=key,
                                  space=space, giver=giver, receiver=body["to_account_id"],
                                  message=body["message"])
        return jsonify({"id": kudos.id, "to_account_id": kudos.to_account_id}), 201


@bp.post("/events")
@require_jwt(context=True)
def panel_event() -> Any:
    """Record a click on a suggestion (adoption metrics) in a real item the viewer may see."""
    body = load(PanelEventSchema())
    _same_product(body["source"])
    with get_db().session() as session:
        # Clicks count on the project's board: a made-up key would add them to any project.
        key = _viewable(session, body["source"], body["key"]).key
        _turned_on(session, body["panel"], body["source"], key)
        adoption.record(session, g.tenant.id, body["panel"], body["kind"], body["source"],
                        key, project_of(body["source"], key, session), g.account_id,
                        target=body["target"])
    return "", 204
