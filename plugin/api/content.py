"""GET the data each panel renders, for the iframe's refreshes and for Forge."""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, g, jsonify

from connect.auth import get_db, require_jwt
from plugin.api.common import register_errors
from plugin.matching.experts import work_line
from plugin.services import panels
from plugin.views import fragments
from plugin.views.common import eligible, fetcher, people, project_of, visible

bp = Blueprint("api_content", __name__, url_prefix="/api/content")
register_errors(bp)

# An issue key as Jira writes it: the key's prefix is the project whose settings hold here.
JIRA_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,49}-[1-9][0-9]{0,9}\Z")


def panel_data(session: Any, panel: str, source: str, key: str, project: str | None,
               topic: str | None = None) -> dict[str, Any]:
    """One panel's data for the verified viewer (recorded in the watch of a cached render)."""
    tenant_id, viewer, watch = g.tenant.id, g.account_id, g.get("inflow_watch")
    if panel == "experts":
        return with_work(panels.experts(session, tenant_id, source, key, project, viewer, visible(),
                                        eligible(session, project), fetcher(source, key),
                                        topic=topic, names=people(session), watch=watch))
    if panel == "reuse":
        return panels.reuse(session, tenant_id, source, key, project, viewer, visible(),
                            fetcher(source, key), watch=watch)
    return panels.contributors(session, tenant_id, source, key, project, viewer, visible(),
                               names=people(session), watch=watch)


def with_work(data: dict[str, Any]) -> dict[str, Any]:
    """Each expert's concrete work as one line, from the evidence this viewer may see.

    A project that hides evidence hides the answered questions too: both say why someone is suggested.
    """
    for person in data.get("experts", []):
        if not person.get("evidence"):
            person["answered_here"] = 0
        person["work"] = work_line(person.get("evidence") or [], person.get("answered_here", 0))
    return data


@bp.get("/<source>/<key>/<panel>")
@require_jwt(context=True)
def content_panel(source: str, key: str, panel: str) -> Any:
    """experts | reuse | contributors for an issue or page."""
    if source not in ("jira", "confluence") or panel not in ("experts", "reuse", "contributors") \
            or len(key) > 255:
        abort(404)
    if g.tenant.product_type in ("jira", "confluence") and source != g.tenant.product_type:
        abort(404)  # the other product's content is not on this site
    if source == "jira" and not JIRA_KEY.match(key):
        # By its id or in lower case an issue is read from the site all the same, but its
        # project (excluded people, panels turned off, hidden evidence) was unknown: none held.
        abort(404, description=f"No {panels.NOUNS[source]} {key} that you may see.")
    project = project_of(source, key)
    g.inflow_viewed = (source, key)

    def render() -> Any:
        with get_db().session() as session:
            data = panel_data(session, panel, source, key, project)
        if data["item"] is None and g.account_id is not None:
            # No such item on the site, or this viewer may not see it: one answer for both.
            abort(404, description=f"No {panels.NOUNS[source]} {key} that you may see.")
        return jsonify(data)

    return fragments.cached(panels.depends_on(panel, source, key, project, g.account_id), render)
