"""`/api/admin/backfill`: the site's backfill status, and "Backfill now", for project admins."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from connect.auth import get_db, require_jwt
from plugin.api.admin import require_project_admin
from plugin.api.common import load, register_errors
from plugin.hooks import start_backfill
from plugin.schemas.settings import BackfillSchema
from plugin.services.backfill import admin_status
from plugin.services.errors import Refused

bp = Blueprint("api_backfill", __name__, url_prefix="/api/admin/backfill")
register_errors(bp)


def _require_admin() -> None:
    """The viewer administers the project the admin page is for (`?projectKey=`)."""
    project = request.args.get("projectKey", "")
    if not project:
        # Nobody is known to administer "no project": refused like any non-admin.
        raise Refused(403, "Only project administrators can see or start the backfill "
                           "(say which project: ?projectKey=KEY).", "projectKey")
    require_project_admin(project)


@bp.get("")
@require_jwt(context=True)
def get_backfill() -> Any:
    """The backfill's status, progress, last checkpoint and latest errors."""
    _require_admin()
    with get_db().session() as session:
        return jsonify(admin_status(session, g.tenant.id))


@bp.post("")
@require_jwt(context=True)
def post_backfill() -> Any:
    """Record a backfill request and enqueue it; a running one is left alone unless restarted."""
    _require_admin()
    body = load(BackfillSchema())
    start_backfill(current_app, g.tenant.id, restart=body["restart"])
    with get_db().session() as session:
        return jsonify(admin_status(session, g.tenant.id)), 202
