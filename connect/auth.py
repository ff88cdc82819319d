"""Flask glue for the JWT verifier: `require_jwt` on every authenticated route."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, current_app, g, jsonify, render_template_string, request
from sqlalchemy import select

from connect.db import Database
from connect.jwt import JWTRejected, RequestFacts, Verified, parse_query, verify_symmetric
from connect.models import Tenant

F = TypeVar("F", bound=Callable[..., Any])

_ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Not authorised</title></head><body style="font-family:sans-serif;color:#172B4D">
<p role="alert">{{ message }}</p></body></html>"""


def get_db(app: Flask | None = None) -> Database:
    """The app's Database (set up by connect.init_app)."""
    return (app or current_app).extensions["inflow.db"]


def token_from_request() -> str | None:
    """The JWT from `Authorization: JWT …` or the `jwt` query parameter."""
    header = request.headers.get("Authorization", "")
    if header[:4].upper() == "JWT ":
        return header[4:].strip() or None
    return request.args.get("jwt") or None


def request_facts() -> RequestFacts:
    """Method, path and query of the current request, relative to our base URL."""
    base_path = urlsplit(current_app.config["INFLOW_BASE_URL"]).path
    raw_query = request.query_string.decode("utf-8", errors="replace")
    return RequestFacts(method=request.method, path=request.path,
                        query=parse_query(raw_query), base_path=base_path)


def load_installed_tenant(client_key: str) -> Tenant | None:
    """An installed tenant by client key (the verified issuer), else None."""
    with get_db().session() as session:
        return session.scalar(
            select(Tenant).where(Tenant.client_key == client_key, Tenant.installed.is_(True))
        )


def verify_current_request(allow_context_qsh: bool = False) -> Verified:
    """Run the ordered verifier on the current request; raises JWTRejected."""
    token = token_from_request()
    if not token:
        raise JWTRejected("Missing JWT")
    return verify_symmetric(token, request_facts(), load_installed_tenant,
                            lambda tenant: tenant.shared_secret,
                            allow_context_qsh=allow_context_qsh)


def require_jwt(context: bool = False) -> Callable[[F], F]:
    """Require a valid tenant JWT; `context=True` also accepts `qsh: context-qsh` tokens.

    On success sets g.tenant (Tenant), g.jwt_claims and g.account_id (the `sub`, may be None).
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if context and request.headers.get("Authorization", "")[:7].lower() == "bearer ":
                from connect.forge import verify_forge_request  # Forge Remote: same routes, FIT
                verified = verify_forge_request()
            else:
                verified = verify_current_request(allow_context_qsh=context)
            g.tenant = verified.tenant
            g.jwt_claims = verified.claims
            g.account_id = verified.account_id
            g.authenticated = True
            return view(*args, **kwargs)

        wrapper.inflow_jwt = "context" if context else "qsh"  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def wants_json() -> bool:
    """True when the client asked for JSON or called the JSON API."""
    lifecycle = request.path in ("/installed", "/uninstalled", "/enabled", "/disabled")
    if request.path.startswith(("/api/", "/forge/", "/webhooks/")) or lifecycle or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json"


def render_rejection(exc: JWTRejected) -> Any:
    """One place where a rejected token becomes a short 401 (JSON or HTML)."""
    if wants_json():
        response = jsonify({"error": "unauthorized", "message": exc.message})
    else:
        response = current_app.response_class(
            render_template_string(_ERROR_PAGE, message=exc.message), mimetype="text/html")
    response.status_code = exc.status
    return response


def init_app(app: Flask) -> None:
    """Register the rejection handler."""
    app.register_error_handler(JWTRejected, render_rejection)
