"""Project admin API: settings and the adoption dashboard, for project admins only."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from marshmallow import ValidationError

from connect.auth import get_db, require_jwt
from plugin.api.common import load, register_errors
from plugin.schemas.settings import PROJECT_KEY, ProjectSettingsSchema
from plugin.services import adoption, permissions
from plugin.services.errors import Refused
from plugin.services.settings import project_settings, save_project_settings
from plugin.views.common import host

bp = Blueprint("api_admin", __name__, url_prefix="/api/admin/projects")
register_errors(bp)


def require_project_admin(project_key: str) -> None:
    """Ask the host (as the app) whether the viewer administers the project; refuse otherwise."""
    if g.tenant.product_type != "jira":  # a Confluence installation has no projects to ask Jira about
        raise Refused(404, "Project settings belong to Jira; this is a Confluence installation.")
    try:
        PROJECT_KEY(project_key)
    except Exception as exc:
        raise Refused(404, "No such project.") from exc
    if not permissions.is_project_admin(host(), g.account_id, project_key):
        raise Refused(403, "Only project administrators can view or change these settings.")


@bp.get("/<project_key>/settings")
@require_jwt(context=True)
def get_settings(project_key: str) -> Any:
    """The project's settings (defaults filled in)."""
    require_project_admin(project_key)
    with get_db().session() as session:
        return jsonify(project_settings(session, g.tenant.id, project_key))


@bp.post("/<project_key>/settings")
@require_jwt(context=True)
def post_settings(project_key: str) -> Any:
    """Change the settings the body sends; those it leaves out keep their stored values."""
    require_project_admin(project_key)
    data = with_known_groups(load(ProjectSettingsSchema()))
    with get_db().session() as session:
        return jsonify(save_project_settings(session, g.tenant.id, project_key, data,
                                             g.account_id))


def with_known_groups(data: dict[str, Any]) -> dict[str, Any]:
    """The settings with each group as Jira spells it; 422 naming any group the site does not have.

    Why: a rule's groups are compared with people's groups as Jira names them, so a misspelt
    group would silently leave a rule that matches no one (or, in "only these", everyone out).
    """
    fields = [f for f in ("include_groups", "exclude_groups") if f in data]
    found, missing = permissions.jira_group_names(host(), [n for f in fields for n in data[f]])
    if missing:
        raise ValidationError({f: [_no_group(n, missing[n]) for n in data[f] if n in missing]
                               for f in fields if any(n in missing for n in data[f])})
    return {**data, **{f: list(dict.fromkeys(found[n] for n in data[f])) for f in fields}}


def _no_group(name: str, near: list[str]) -> str:
    hint = f" Did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    return f"This site has no group named {name!r}.{hint}"


@bp.get("/<project_key>/dashboard")
@require_jwt(context=True)
def get_dashboard(project_key: str) -> Any:
    """Twelve weeks of adoption for the project."""
    require_project_admin(project_key)
    with get_db().session() as session:
        return jsonify(adoption.dashboard(session, g.tenant.id, project_key))
