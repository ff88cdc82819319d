"""Rovo actions served by the Forge remote: experts, similar work and contributors, as data.

Each action is a Forge `action` module whose `endpoint` routes here (Forge POSTs its payload: the
inputs an agent filled in, plus a `context` with the issue or page the user is looking at). Who
asks comes only from the verified Forge token (`principal`), and what they may see is checked
as them exactly as for the panels; inputs are hints for *which* item, never for *who*.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, jsonify

from connect.auth import get_db
from connect.forge import verify_forge_request
from plugin.api.common import load, register_errors
from plugin.api.content import JIRA_KEY, with_work
from plugin.schemas.rovo import RovoPayloadSchema
from plugin.services import panels
from plugin.services.errors import Refused
from plugin.views.common import eligible, fetcher, people, project_of, visible

bp = Blueprint("rovo", __name__, url_prefix="/forge/rovo")
register_errors(bp)

PAGE_ID = re.compile(r"^[1-9][0-9]{0,19}\Z")
EVIDENCE = 3  # per person: enough to quote, short enough to read aloud


def forge_user(view: Callable[..., Any]) -> Callable[..., Any]:
    """A verified Forge call with a user in session: sets g.tenant and g.account_id."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verified = verify_forge_request()
        g.tenant, g.jwt_claims, g.authenticated = verified.tenant, verified.claims, True
        g.account_id = verified.account_id
        if not g.account_id:
            raise Refused(403, "Inflow answers Rovo for a signed-in user only.")
        return view(*args, **kwargs)

    return wrapper


def _target(body: dict[str, Any]) -> tuple[str, str]:
    """(source, key) of the item asked about: a well-formed input, else the page's context."""
    source = g.tenant.product_type
    context = (body.get("context") or {}).get(source) or {}
    if source == "jira":
        candidates = [body.get("issueKey"), context.get("issueKey")]
        pattern = JIRA_KEY
    else:
        candidates = [body.get("pageId"), context.get("contentId")]
        pattern = PAGE_ID
    for value in candidates:
        text = str(value).strip().upper() if value is not None else ""
        if pattern.match(text):
            return source, text
    what = "issue key (like ABC-123)" if source == "jira" else "page id"
    raise Refused(422, f"Say which {what} to look at.", "issueKey" if source == "jira" else "pageId")


def _item(data: dict[str, Any]) -> dict[str, Any] | None:
    item = data.get("item")
    return None if item is None else {"key": item["key"], "title": item["title"]}


def _answer(data: dict[str, Any], found: list[dict[str, Any]], name: str) -> Any:
    """The shared shape: the item, the list under `name`, and a sentence when it is empty."""
    body: dict[str, Any] = {"item": _item(data), name: found}
    if not found:
        body["message"] = data.get("empty_reason") or "Nothing to report."
    if data.get("enabled") is False:
        body = {"item": _item(data), name: [],
                "message": "A project admin turned this off for this project."}
    return jsonify(body)


@bp.post("/experts")
@forge_user
def find_experts() -> Any:
    """Who knows about this issue or page, and the work that shows it."""
    body = load(RovoPayloadSchema())
    source, key = _target(body)
    project = project_of(source, key)
    with get_db().session() as session:
        data = with_work(panels.experts(session, g.tenant.id, source, key, project, g.account_id,
                                        visible(), eligible(session, project), fetcher(source, key),
                                        topic=body.get("topic"), record=False, names=people(session)))
    found = [{"name": e["display_name"], "accountId": e["account_id"],
              "why": f"{e['summary']}: {e['work']}" if e["work"] else e["summary"],
              "evidence": [{"key": ev["key"], "title": ev["title"], "url": ev["url"],
                            "role": ev["role"]} for ev in e["evidence"][:EVIDENCE]]}
             for e in data["experts"]]
    return _answer(data, found, "experts")


@bp.post("/similar")
@forge_user
def find_similar() -> Any:
    """Earlier issues and pages like this one, with why they matched."""
    body = load(RovoPayloadSchema())
    source, key = _target(body)
    with get_db().session() as session:
        data = panels.reuse(session, g.tenant.id, source, key, project_of(source, key, session),
                            g.account_id, visible(), fetcher(source, key), record=False)
    found = [{"key": s["key"], "title": s["title"], "url": s["url"],
              "status": s["resolution"] or s["status"], "why": s["reasons"]}
             for s in data["suggestions"]]
    return _answer(data, found, "similar")


@bp.post("/contributors")
@forge_user
def who_contributed() -> Any:
    """Who worked on this issue or page, how, and the thanks they received here."""
    body = load(RovoPayloadSchema())
    source, key = _target(body)
    with get_db().session() as session:
        data = panels.contributors(session, g.tenant.id, source, key, project_of(source, key, session),
                                   g.account_id, visible(), names=people(session), record=False)
    found = [{"name": c["display_name"], "accountId": c["account_id"], "roles": c["roles"],
              "kudos": c["kudos"]} for c in data["contributors"]]
    return _answer(data, found, "contributors")
