"""Forge Remote routes: the generated manifest, product events and app lifecycle events.

Product events are stored in the same WebhookEvent table, in their Connect shape, and handed to
the same event handler as Connect webhooks; lifecycle events create or refresh the Forge tenant.
UI calls need no route here: `require_jwt(context=True)` accepts a FIT on the /api routes.
"""
from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from connect import lifecycle, webhooks
from connect.db import utcnow
from connect.forge import forge_settings, verify_forge_request
from connect.forge_events import (
    LIFECYCLE_EVENTS,
    ConnectEvent,
    UnsupportedEvent,
    delivered,
    event_key,
    lifecycle_type,
    map_event,
    retry_count,
)
from connect.headers import database_unavailable, read_json_object, request_body
from connect.jwt import JWTRejected
from connect.models import WebhookEvent

log = logging.getLogger(__name__)

bp = Blueprint("forge", __name__)

TEMPLATE = Path(__file__).resolve().parent.parent / "forge" / "manifest.template.yml"
# `forge register` replaces this with the real app id; the backend then needs INFLOW_FORGE_APP_ID.
PLACEHOLDER_APP_ID = "ari:cloud:ecosystem::app/00000000-0000-0000-0000-000000000000"
APP_ID = re.compile(r"^ari:cloud:ecosystem::app/[0-9a-fA-F-]{36}\Z")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


# ---------- manifest ----------

def render_manifest(base_url: str, app_id: str | None = None) -> str:
    """The Forge manifest with our remote's base URL and app id filled in."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"INFLOW_BASE_URL must be an absolute http(s) URL, not {base_url!r}")
    app_id = app_id or PLACEHOLDER_APP_ID
    if not APP_ID.match(app_id):
        raise ValueError(f"INFLOW_FORGE_APP_ID must look like {PLACEHOLDER_APP_ID}")
    values = {"app_id": app_id, "base_url": base_url.rstrip("/")}
    # JSON strings are valid YAML scalars: no value can break out of its field.
    return _PLACEHOLDER.sub(lambda m: json.dumps(values[m.group(1)]),
                            TEMPLATE.read_text(encoding="utf-8"))


@bp.get("/forge/manifest.yml")
def manifest() -> Response:
    """The manifest for this deployment, ready for `forge deploy` (save as forge/manifest.yml)."""
    _, app_id = forge_settings(current_app)
    text = render_manifest(current_app.config["INFLOW_BASE_URL"], app_id)
    return Response(text, mimetype="text/yaml")


# ---------- events ----------

def store_forge_event(tenant_id: int, event: ConnectEvent) -> int | None:
    """Insert the translated event; None when this delivery was already stored."""
    return webhooks.insert_event(WebhookEvent(
        tenant_id=tenant_id, event_key=event.event_key, event_type=event.event_type,
        product=event.product, item_ref=event.item_ref, event_ts=event.event_ts,
        payload=event.payload))


@bp.post("/forge/events")
def events() -> Any:
    """A product event from a Forge trigger: stored once as its Connect equivalent."""
    verified = verify_forge_request(trigger=True)
    body = read_json_object(clean=True)  # the site's text, NUL and all: kept, not refused
    try:
        event = map_event(body)
    except UnsupportedEvent as exc:
        abort(400, description=str(exc))
    problem = webhooks.malformed(event.product, event.payload)
    if problem:
        abort(400, description=f"Not a {event.product} event: {problem}.")
    if verified.tenant.product_type != event.product:
        raise JWTRejected(f"This installation does not send {event.product} events", status=403)
    g.tenant = verified.tenant
    event_id = store_forge_event(verified.tenant.id, event)
    if event_id is None:
        return jsonify({"duplicate": True}), 200
    webhooks.hand_over(verified.tenant.id, event_id)
    return jsonify({"stored": True, "event_id": event_id}), 202


@bp.post("/forge/lifecycle")
def app_lifecycle() -> Any:
    """`avi:forge:installed:app` / `upgraded:app`: the verified call made/refreshed the tenant."""
    verified = verify_forge_request(trigger=True)
    forge_type = lifecycle_type(read_json_object())
    if forge_type not in LIFECYCLE_EVENTS:
        abort(400, description=f"Unsupported Forge lifecycle event: {forge_type!r}")
    g.tenant = verified.tenant
    if forge_type == "avi:forge:installed:app":
        _notify_installed(verified.tenant.id)
    return jsonify({"tenant": verified.tenant.id, "event": forge_type}), 200


SCHEDULED_EVENT = "forge:scheduled"


@bp.post("/forge/scheduled")
def scheduled() -> Any:
    """The hourly scheduled trigger: the verified call brought a fresh system token (stored by
    `verify_forge_request`); the site's reconciliation is queued, once per delivery."""
    verified = verify_forge_request(trigger=True)
    # The verified token is the trigger; a delivery without a body must still reconcile the site.
    body = read_json_object() if request_body().strip() else {}
    g.tenant = verified.tenant
    # Stored like an event (already processed) so a redelivery of the same invocation, which
    # differs only by its retryContext, finds it and queues nothing again.
    stored = webhooks.insert_event(WebhookEvent(
        tenant_id=verified.tenant.id, event_key=_invocation_key(body), event_type=SCHEDULED_EVENT,
        product=verified.tenant.product_type, item_ref=None, event_ts=int(time.time() * 1000),
        payload={"retryCount": retry_count(body)}, processed_at=utcnow()))
    if stored is None:
        return jsonify({"duplicate": True}), 200
    _notify("scheduled", verified.tenant.id)
    return jsonify({"tenant": verified.tenant.id, "queued": "reconcile"}), 202


def _invocation_key(body: dict[str, Any]) -> str:
    """Each invocation has its own contextToken; a body without one is keyed by its hour."""
    if delivered(body).get("contextToken"):
        return event_key(body)
    return event_key({**delivered(body), "hour": int(time.time() // 3600)})


def _notify_installed(tenant_id: int) -> None:
    _notify("installed", tenant_id)


def _notify(event: str, tenant_id: int) -> None:
    handler = current_app.extensions.get(lifecycle.HANDLER_KEY)
    if handler is None:
        return
    try:
        handler(event, tenant_id)
    except Exception:  # the delivery is stored; a failed hook must not fail it
        log.exception("lifecycle handler failed for Forge %s of tenant %s", event, tenant_id)


for _error in (OperationalError, InterfaceError, PoolTimeoutError):
    bp.register_error_handler(_error, database_unavailable)


def init_app(app: Flask) -> None:
    """Register the Forge routes."""
    app.register_blueprint(bp)

