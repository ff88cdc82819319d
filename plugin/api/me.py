"""The viewer's own data: what Inflow knows, preferences, export and erasure."""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, g, jsonify

from connect.auth import get_db, require_jwt
from connect.db import utcnow
from plugin.api.common import load, register_errors
from plugin.pipeline.digests import is_subscribed, set_subscription
from plugin.schemas.settings import EraseSchema, PreferencesSchema
from plugin.services import privacy, recognition
from plugin.services.errors import Refused
from plugin.services.settings import preference, set_preference
from plugin.views.common import visible

bp = Blueprint("api_me", __name__, url_prefix="/api/me")
EVIDENCE = 10  # items the personal page lists the person's work on
register_errors(bp)


def _viewer() -> str:
    if not g.account_id:
        raise Refused(403, "Log in to see your data.")
    return g.account_id


def about(session: Any, tenant_id: int, account_id: str,
          visible: Callable[[list[Any]], list[Any]]) -> dict[str, Any]:
    """The personal page's data: topics, evidence on items `visible` keeps, impact, preferences."""
    evidence = privacy.contributions(session, tenant_id, account_id, limit=60, visible=visible,
                                     items=EVIDENCE)
    return {"account_id": account_id,
            "topics": privacy.topics(session, tenant_id, account_id),
            "evidence": _by_item(evidence, EVIDENCE),
            "impact": recognition.impact(session, tenant_id, account_id,
                                         utcnow() - timedelta(days=30)),
            "preferences": preferences(session, tenant_id, account_id)}


def preferences(session: Any, tenant_id: int, account_id: str) -> dict[str, Any]:
    """The person's choices as the personal page shows them (a pause over is no pause)."""
    pref = preference(session, tenant_id, account_id)
    now = utcnow()
    paused = pref.paused_until if pref and pref.paused_until and pref.paused_until > now else None
    return {"opted_out": bool(pref and pref.opted_out),
            "paused_until": paused.isoformat() if paused else None,
            "weekly_digest": is_subscribed(session, tenant_id, account_id)}


def _by_item(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """One entry per item, with every role the person had on it (newest items first)."""
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        entry = items.setdefault((row["source"], row["key"]), {**row, "roles": []})
        if row["role"] not in entry["roles"]:
            entry["roles"].append(row["role"])
    return list(items.values())[:limit]


@bp.get("")
@require_jwt(context=True)
def get_me() -> Any:
    """What Inflow knows about the viewer."""
    viewer = _viewer()
    with get_db().session() as session:
        return jsonify(about(session, g.tenant.id, viewer, visible()))


@bp.post("/preferences")
@require_jwt(context=True)
def post_preferences() -> Any:
    """Opt out of being suggested, pause for some days (0 ends a pause), weekly digest on or off."""
    body = load(PreferencesSchema())
    viewer = _viewer()
    if body["weekly_digest"] and g.tenant.product_type != "jira":
        # Digests are e-mailed through Jira's notify API; a Confluence site cannot send them.
        raise Refused(422, "Weekly digests are sent from Jira; this site cannot send them.",
                      "weekly_digest")
    days = body["pause_days"]
    with get_db().session() as session:
        if days is None:
            current = preference(session, g.tenant.id, viewer)
            until = current.paused_until if current is not None else None
        else:
            until = utcnow() + timedelta(days=days) if days else None
        set_preference(session, g.tenant.id, viewer, body["opted_out"], until)
        if body["weekly_digest"] is not None:
            set_subscription(session, g.tenant.id, viewer, body["weekly_digest"])
        return jsonify(preferences(session, g.tenant.id, viewer))


@bp.get("/export")
@require_jwt(context=True)
def export() -> Any:
    """Everything Inflow stores about the viewer, as a JSON download."""
    viewer = _viewer()
    with get_db().session() as session:
        response = jsonify(privacy.export_person(session, g.tenant.id, viewer))
    response.headers["Content-Disposition"] = 'attachment; filename="inflow-my-data.json"'
    return response


@bp.post("/erase")
@require_jwt(context=True)
def erase() -> Any:
    """Erase the viewer's data everywhere in Inflow, both products of the site (needs {"confirm": "ERASE"})."""
    load(EraseSchema())
    viewer = _viewer()
    with get_db().session() as session:
        tenants = privacy.erase_person(session, g.tenant.id, viewer)
    if (shared := current_app.extensions.get("inflow.answers")) is not None:
        for tenant_id in tenants:
            shared.forget(tenant_id, {viewer})
    return jsonify({"erased": True})
