"""Project admin API: settings and the adoption dashboard, for project admins only."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from connect.auth import get_db, require_jwt
from plugin.api.common import load, register_errors
from plugin.schemas.settings import PROJECT_KEY, ProjectSettingsSchema
from plugin.services import adoption, permissions
from plugin.services.errors import Refused
from plugin.services.people import matching_people, typed_rules
from plugin.services.settings import PEOPLE_RULES, project_settings, save_project_settings
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


@bp.get("/<project_key>/people")
@require_jwt(context=True)
def get_people(project_key: str) -> Any:
    """How to show each account id the project's people rules hold: a name, or the id itself."""
    # Read only, beside the settings rather than in them: a GET of the settings must post back
    # unchanged, and clients rely on include_people and exclude_people holding account ids.
    require_project_admin(project_key)
    with get_db().session() as session:
        settings = project_settings(session, g.tenant.id, project_key)
        return jsonify({"people": typed_rules(session, g.tenant.id, settings)})


@bp.post("/<project_key>/settings")
@require_jwt(context=True)
def post_settings(project_key: str) -> Any:
    """Change the settings the body sends; those it leaves out keep their stored values."""
    require_project_admin(project_key)
    data = load(ProjectSettingsSchema())
    with get_db().session() as session:
        stored = project_settings(session, g.tenant.id, project_key)
        data = with_known_people(session, g.tenant.id, with_known_groups(data, stored), stored)
        return jsonify(save_project_settings(session, g.tenant.id, project_key, data,
                                             g.account_id))


def with_known_groups(data: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """The settings with each group as Jira spells it; 422 naming any group the site does not have.

    Why: a rule's groups are compared with people's groups as Jira names them, so a misspelt
    group would silently leave a rule that matches no one (or, in "only these", everyone out).
    A group the field already holds is kept as it is even when the site no longer has it (deleted
    or renamed since): the admin page sends every field, and no other change could be saved.
    """
    fields = [f for f in ("include_groups", "exclude_groups") if f in data]
    found, missing = permissions.jira_group_names(host(), [n for f in fields for n in data[f]])
    errors = {f: [_no_group(n, missing[n]) for n in data[f] if n in missing and n not in stored[f]]
              for f in fields}
    if any(errors.values()):
        raise ValidationError({f: messages for f, messages in errors.items() if messages})
    return {**data, **{f: list(dict.fromkeys(found.get(n, n) for n in data[f])) for f in fields}}


def _no_group(name: str, near: list[str]) -> str:
    hint = f" Did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    return f"This site has no group named {name!r}.{hint}"


def with_known_people(session: Session, tenant_id: int, data: dict[str, Any],
                      stored: dict[str, Any]) -> dict[str, Any]:
    """The settings with each person as an account id; 422 naming any entry that is no one, or
    several people, of the site.

    Why: a rule compares account ids, so a display name or a typo would silently leave a rule
    that matches no one. An entry the field already holds is kept as it is even when it names no
    one now (saved before this check, or someone whose data was erased), so the page still saves.
    """
    fields = [f for f in PEOPLE_RULES if f in data]
    found = matching_people(session, tenant_id, [n for f in fields for n in data[f]])
    checked = {f: _account_ids(data[f], found, set(stored[f])) for f in fields}
    errors = {f: messages for f, (_, messages) in checked.items() if messages}
    if errors:
        raise ValidationError(errors)
    return {**data, **{f: ids for f, (ids, _) in checked.items()}}


def _account_ids(entries: list[str], found: dict[str, list[str]],
                 kept: set[str]) -> tuple[list[str], list[str]]:
    """One field's entries as account ids, and a message for each that is no one or several."""
    ids, errors = [], []
    for entry in entries:
        if len(found[entry]) == 1:
            ids.append(found[entry][0])
        elif entry in kept:
            ids.append(entry)
        else:
            errors.append(_not_one_person(entry, found[entry]))
    return list(dict.fromkeys(ids)), errors


def _not_one_person(entry: str, accounts: list[str]) -> str:
    if not accounts:
        return f"This site has no person named {entry!r} (display name or account id)."
    shown = ", ".join(accounts[:5]) + (", …" if len(accounts) > 5 else "")
    return (f"{len(accounts)} people on this site are named {entry!r}; "
            f"enter the account id of the one you mean ({shown}).")


@bp.get("/<project_key>/dashboard")
@require_jwt(context=True)
def get_dashboard(project_key: str) -> Any:
    """Twelve weeks of adoption for the project."""
    require_project_admin(project_key)
    with get_db().session() as session:
        return jsonify(adoption.dashboard(session, g.tenant.id, project_key))
