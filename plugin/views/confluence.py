"""Confluence iframe pages: the four macros, their export rendering, the byline and personal page."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, g, jsonify, request

from connect.auth import get_db, require_jwt
from connect.db import utcnow
from connect.host_client import HostError
from plugin.api.content import panel_data
from plugin.services import panels, recognition
from plugin.views import fragments
from plugin.views.common import eligible, people, project_of, visible
from plugin.views.pages import HEADINGS, error_page, render, render_personal_page

bp = Blueprint("confluence_pages", __name__, url_prefix="/confluence")

MACROS = {"experts": "experts", "related": "reuse", "contributors": "contributors",
          "recognition": None, "board": None}
INTERACTIVE_OUTPUTS = ("", "display", "preview", "desktop", "mobile")
PERIODS = {"week": 7, "month": 30, "quarter": 91, "year": 365, "all": 36500}
UNREACHABLE = "Inflow could not reach Confluence just now. Reload the page to try again."


def _page_id() -> str:
    return request.args.get("pageId", "").strip()[:255]


def _in_space(scope: str, space: str | None) -> bool:
    """Whether a board counts one space's thanks, not the whole site's."""
    return scope != "site" and bool(space)


def _board(session: Any, scope: str, space: str | None, period: str) -> dict[str, Any]:
    days = PERIODS.get(period, 30)
    in_space = _in_space(scope, space)
    return {"board": recognition.board(session, g.tenant.id, utcnow() - timedelta(days=days),
                                       space=space if in_space else None,
                                       names=people(session), until=fragments.watch()),
            "board_scope": f"Space {space}" if in_space else "Whole site",
            "period_label": "All time" if period == "all" else f"Last {days} days"}


@bp.get("/macros/<macro>")
@require_jwt(product="confluence")
def macro(macro: str) -> Any:
    """A macro in view mode; exports (PDF, Word, email) get a clear static message instead."""
    if macro not in MACROS:
        return error_page("No such macro.", 404)
    heading = HEADINGS[macro]
    if request.args.get("outputType", "display").lower() not in INTERACTIVE_OUTPUTS:
        return render("confluence/unavailable.html", heading=heading, what=heading.lower())
    page_id, space = _page_id(), request.args.get("spaceKey") or None
    if MACROS[macro] is not None and not page_id:
        return error_page("This macro needs a page.", 400, heading)
    topic = request.args.get("topic") or None
    scope, period = request.args.get("scope", "space"), request.args.get("period", "month")
    facts = panels.depends_on(MACROS[macro] or "board", "confluence", page_id, space,
                              g.account_id)

    panel = MACROS[macro]
    if panel is not None:
        g.inflow_viewed = ("confluence", page_id)

    def render_macro() -> Any:
        with get_db().session() as session:
            if panel is None:
                context = _board(session, scope, space, period)
            else:
                context = {"data": panel_data(session, panel, "confluence", page_id,
                                              space, topic=topic)}
        return render("confluence/macro.html", macro=macro, heading=heading,
                      source="confluence", key=page_id, project=space, **context)

    try:
        return fragments.cached(facts, render_macro)
    except HostError:
        return error_page(UNREACHABLE, 502, heading)


@bp.get("/macros/export")
@require_jwt(product="confluence")
def macro_export() -> Any:
    """Static storage-format XHTML Confluence embeds in exports of a macro."""
    macro = request.args.get("macro", "")
    if macro not in MACROS:
        return error_page("No such macro.", 404)
    return "<p>" + render("confluence/export.html", heading=HEADINGS[macro]) + "</p>"


@bp.get("/byline")
@require_jwt(product="confluence")
def byline() -> Any:
    """The combined view for a page: experts, related work, contributors."""
    page_id = _page_id()
    if not page_id:
        return error_page("This view needs a page.", 400)
    views = ("experts", "reuse", "contributors")
    space = project_of("confluence", page_id)  # its settings hold here as in a macro

    def render_byline() -> Any:
        with get_db().session() as session:
            data = {name: panel_data(session, name, "confluence", page_id, space)
                    for name in views}
        return render("confluence/byline.html", experts=data["experts"], reuse=data["reuse"],
                      contributors=data["contributors"], source="confluence", key=page_id)

    facts = [fact for name in views for fact in
             panels.depends_on(name, "confluence", page_id, space, g.account_id)]
    try:
        return fragments.cached(list(dict.fromkeys(facts)), render_byline)
    except HostError:
        return error_page(UNREACHABLE, 502)


@bp.get("/byline/context")
@require_jwt(product="confluence")
def byline_context() -> Any:
    """The byline item's title for a page ("3 experts · 5 related"), as a context provider."""
    page_id = _page_id()
    if not page_id:
        return jsonify({"error": "bad_request", "message": "This view needs a page."}), 400
    space = project_of("confluence", page_id)

    def render_title() -> Any:
        try:
            with get_db().session() as session:
                n = panels.counts(session, g.tenant.id, "confluence", page_id, space,
                                  g.account_id, visible(), eligible(session, space),
                                  watch=fragments.watch())
            title = f"{n['experts']} expert{'s' * (n['experts'] != 1)} · {n['related']} related"
        except HostError:  # no permission answers, so no counts; the byline opens and explains
            fragments.not_kept()
            title = "Inflow"
        return jsonify({"title": {"value": title},
                        "tooltip": {"value": "Inflow: people and work related to this page"}})

    return fragments.cached(panels.depends_on("counts", "confluence", page_id, space, g.account_id),
                            render_title)


@bp.get("/me")
@require_jwt(product="confluence")
def personal_page() -> Any:
    """What Inflow knows about the viewer (Confluence entry point)."""
    return render_personal_page("confluence")
