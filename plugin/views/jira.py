"""Jira iframe pages: the three issue panels, the project admin tab and the personal page."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, request
from sqlalchemy.orm import Session

from connect.auth import get_db, require_jwt
from connect.host_client import HostError
from plugin.api.content import panel_data
from plugin.schemas.settings import PROJECT_KEY
from plugin.search import sites
from plugin.services import adoption, panels, permissions
from plugin.services.backfill import admin_status
from plugin.services.people import typed_rules
from plugin.services.settings import PEOPLE_RULES, project_settings
from plugin.services.site_wait import site_wait
from plugin.views import fragments
from plugin.views.common import host, project_of
from plugin.views.pages import HEADINGS, error_page, render, render_personal_page

bp = Blueprint("jira_pages", __name__, url_prefix="/jira")

UNREACHABLE = "Inflow could not reach Jira just now. Reload the page to try again."


@bp.get("/panels/<panel>")
@require_jwt(product="jira")
def issue_panel(panel: str) -> Any:
    """An issue panel, rendered complete on the server."""
    if panel not in ("experts", "reuse", "contributors"):
        return error_page("No such panel.", 404)
    key = request.args.get("issueKey", "").strip()
    if not key or len(key) > 255:
        return error_page("This panel needs an issue.", 400, HEADINGS[panel])
    project = project_of("jira", key)
    # Jira shows an issue's panels only to people who may browse it, and this URL's issue key is
    # covered by the token's qsh: the host has vouched for the issue, so it is not asked again.
    g.inflow_vouched = ("jira", key)
    try:
        return fragments.cached(panels.depends_on(panel, "jira", key, project, g.account_id),
                                lambda: _panel_page(panel, key, project))
    except HostError:
        return error_page(UNREACHABLE, 502, HEADINGS[panel])


def _panel_page(panel: str, key: str, project: str | None) -> str:
    with get_db().session() as session:
        data = panel_data(session, panel, "jira", key, project)
    return render("jira/panel.html", panel=panel, heading=HEADINGS[panel], data=data,
                  source="jira", key=key, project=project)


def _valid_project(key: str) -> bool:
    try:
        PROJECT_KEY(key)
    except Exception:
        return False
    return True


@bp.get("/admin")
@require_jwt(product="jira")
def project_admin() -> Any:
    """Project settings and the adoption dashboard, for that project's admins only."""
    project = request.args.get("projectKey", "")
    if not _valid_project(project):
        return error_page("This page needs a project.", 400)
    try:
        allowed = permissions.is_project_admin(host(), g.account_id, project)
    except HostError:
        return error_page(UNREACHABLE, 502)
    if not allowed:
        return error_page("Only administrators of this project can see Inflow's settings.", 403)
    with get_db().session() as session:
        settings = _as_typed(session, g.tenant.id, project_settings(session, g.tenant.id, project))
        dashboard = adoption.dashboard(session, g.tenant.id, project)
        backfill = admin_status(session, g.tenant.id)
        linked = sites.partner(session, g.tenant) is not None
        wait = site_wait(session, g.tenant.id, "jira", current_app.config.get("REDIS_URL"))
    percent_weeks = [{**week, "shown_pct": round(100 * week["shown_share"]),
                      "used_pct": round(100 * week["used_share"])} for week in dashboard["weeks"]]
    return render("jira/admin.html", settings=settings, dashboard=dashboard, project=project,
                  percent_weeks=percent_weeks, backfill=backfill, linked=linked, wait=wait,
                  source="jira", key="")


def _as_typed(session: Session, tenant_id: int, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as the form shows them: people by display name where that names them alone."""
    shown = typed_rules(session, tenant_id, settings)
    return {**settings, **{f: [shown[a] for a in settings[f]] for f in PEOPLE_RULES}}


@bp.get("/me")
@require_jwt(product="jira")
def personal_page() -> Any:
    """What Inflow knows about the viewer, with their choices and data rights."""
    return render_personal_page("jira")
