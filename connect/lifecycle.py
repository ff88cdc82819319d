"""Connect lifecycle callbacks: signed install/uninstall (RS256) and enable/disable (HS256)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from connect import tenants
from connect.auth import get_db, request_facts, require_jwt, token_from_request
from connect.headers import database_unavailable, read_json_object
from connect.install_keys import InstallKeys
from connect.jwt import JWTRejected, verify_asymmetric

log = logging.getLogger(__name__)

bp = Blueprint("lifecycle", __name__)

LifecycleHandler = Callable[[str, int], None]
HANDLER_KEY = "inflow.lifecycle_handler"
KEYS_KEY = "inflow.install_keys"


class LifecyclePayloadSchema(Schema):
    """What every lifecycle callback carries (Atlassian adds fields over time: EXCLUDE)."""

    class Meta:
        unknown = EXCLUDE

    key = fields.String(required=True, validate=validate.Length(min=1, max=255))
    clientKey = fields.String(required=True, validate=validate.Length(min=1, max=255))
    sharedSecret = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=512))
    baseUrl = fields.Url(required=True, require_tld=False, schemes={"http", "https"},
                         validate=validate.Length(max=512))
    displayUrl = fields.Url(load_default=None, allow_none=True, require_tld=False,
                            schemes={"http", "https"}, validate=validate.Length(max=512))
    productType = fields.String(required=True, validate=validate.OneOf(["jira", "confluence"]))
    oauthClientId = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=255))
    cloudId = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255))
    eventType = fields.String(load_default=None, allow_none=True)


class InstalledPayloadSchema(LifecyclePayloadSchema):
    """`installed` must carry the shared secret the tenant will sign with."""

    sharedSecret = fields.String(required=True, validate=validate.Length(min=1, max=512))


class PayloadInvalid(Exception):
    """A lifecycle body that is JSON but not a valid payload (422 with field messages)."""

    def __init__(self, messages: Any) -> None:
        super().__init__("invalid lifecycle payload")
        self.messages = messages


def set_lifecycle_handler(app: Flask, fn: LifecycleHandler | None) -> None:
    """Register `fn(event, tenant_id)` called after an install or uninstall commits."""
    app.extensions[HANDLER_KEY] = fn


def _notify(event: str, tenant_id: int) -> None:
    handler = current_app.extensions.get(HANDLER_KEY)
    if handler is None:
        return
    try:
        handler(event, tenant_id)
    except Exception:  # the install is stored; a failed hook must not undo it for the host
        log.exception("lifecycle handler failed for %s of tenant %s", event, tenant_id)


def _load_payload(schema: Schema) -> dict[str, Any]:
    body = read_json_object()
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise PayloadInvalid(exc.normalized_messages()) from exc


def verify_signed_install() -> dict[str, Any]:
    """Verify Atlassian's RS256 install/uninstall JWT; returns its claims."""
    token = token_from_request()
    if not token:
        raise JWTRejected("Missing JWT")
    keys: InstallKeys = current_app.extensions[KEYS_KEY]
    keys_url = current_app.config["INFLOW_INSTALL_KEYS_URL"]
    return verify_asymmetric(token, request_facts(), lambda kid: keys.get(keys_url, kid),
                             audience=current_app.config["INFLOW_BASE_URL"].rstrip("/"))


def _require_issuer(claims: dict[str, Any], client_key: str) -> None:
    # The JWT's issuer is the tenant the host vouches for; the body must be about that tenant.
    if claims.get("iss") != client_key:
        raise JWTRejected("JWT issuer does not match the payload clientKey")


@bp.post("/installed")
def installed() -> Any:
    """Store (or update, rotating the secret) the tenant from a verified signed install."""
    claims = verify_signed_install()
    payload = _load_payload(InstalledPayloadSchema())
    _require_issuer(claims, payload["clientKey"])
    with get_db().session() as session:
        tenant_id = tenants.upsert_installed(session, payload).id
    log.info("installed tenant %s (%s)", tenant_id, payload["productType"])
    _notify("installed", tenant_id)
    return "", 204


@bp.post("/uninstalled")
def uninstalled() -> Any:
    """Mark the tenant uninstalled after a verified signed uninstall; the record is kept."""
    claims = verify_signed_install()
    payload = _load_payload(LifecyclePayloadSchema())
    _require_issuer(claims, payload["clientKey"])
    with get_db().session() as session:
        tenant = tenants.get_by_client_key(session, payload["clientKey"])
        # A tenant Forge serves now: removing the Connect app it moved from says nothing of it.
        if tenant is not None and tenant.host != "forge":
            tenants.mark_uninstalled(session, payload["clientKey"])
        tenant_id = tenant.id if tenant is not None and tenant.host != "forge" else None
    if tenant_id is not None:
        log.info("uninstalled tenant %s", tenant_id)
        _notify("uninstalled", tenant_id)
    return "", 204


def _set_enabled(enabled: bool) -> Any:
    payload = _load_payload(LifecyclePayloadSchema())
    _require_issuer({"iss": g.tenant.client_key}, payload["clientKey"])
    if g.tenant.host != "forge":  # Forge apps are enabled while Forge calls them
        with get_db().session() as session:
            tenants.set_enabled(session, g.tenant.id, enabled)
    return "", 204


@bp.post("/enabled")
@require_jwt()
def enabled() -> Any:
    """The host enabled the app for this tenant (HS256 with the stored secret)."""
    return _set_enabled(True)


@bp.post("/disabled")
@require_jwt()
def disabled() -> Any:
    """The host disabled the app for this tenant (HS256 with the stored secret)."""
    return _set_enabled(False)


@bp.errorhandler(PayloadInvalid)
def _render_invalid(exc: PayloadInvalid) -> Any:
    response = jsonify({"error": "invalid_payload", "message": "Lifecycle payload is invalid",
                        "fields": exc.messages})
    response.status_code = 422
    return response


for _error in (OperationalError, InterfaceError, PoolTimeoutError):
    bp.register_error_handler(_error, database_unavailable)


def init_app(app: Flask) -> None:
    """Register the lifecycle routes and the install key cache."""
    app.extensions.setdefault(KEYS_KEY, InstallKeys())
    app.extensions.setdefault(HANDLER_KEY, None)
    app.register_blueprint(bp)
