"""Rendering helpers for the iframe pages: one place for the error page and panel headings."""
from __future__ import annotations

from typing import Any

from flask import g, render_template

from connect.auth import get_db
from plugin.api.me import about
from plugin.views.common import visible

HEADINGS = {"experts": "Ask an expert", "reuse": "Reuse suggestions",
            "related": "Related work", "contributors": "Contributors & kudos",
            "recognition": "Recognition board", "board": "Recognition board"}


def error_page(message: str, status: int, heading: str = "Inflow") -> tuple[str, int]:
    """A short, styled error page inside the iframe."""
    return render_template("error.html", message=message, heading=heading), status


def render(template: str, **context: Any) -> str:
    """Render with the viewer's account id available to every template."""
    return render_template(template, viewer=g.get("account_id"), **context)


def render_personal_page(source: str) -> Any:
    """What Inflow knows about the viewer, with their choices and data rights (either product)."""
    if not g.account_id:
        return error_page("Log in to see what Inflow knows about you.", 403)
    with get_db().session() as session:
        me = about(session, g.tenant.id, g.account_id, visible())
    return render("me.html", me=me, source=source, key="")
