"""Flask glue for the JWT verifier: `require_jwt` on every authenticated route."""
from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, current_app, g, jsonify, render_template_string, request
from sqlalchemy import event, select

from connect.db import Database
from connect.jwt import (
    BadSignature,
    Expired,
    JWTRejected,
    RequestFacts,
    Verified,
    parse_query,
    verify_symmetric,
)
from connect.models import Tenant

F = TypeVar("F", bound=Callable[..., Any])

_ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Inflow</title></head><body style="font-family:sans-serif;color:#172B4D">
<p role="alert">{{ advice }}</p>{% if detail %}
<p style="color:#626F86;font-size:12px">Details for your administrator: {{ detail }}</p>{% endif %}
</body></html>"""
# What a person in a frame reads; the JSON API keeps the verifier's message (docs/reference.md).
EXPIRED_ADVICE = "This view has expired. Reload the page to see it again."
REFUSED_ADVICE = ("Inflow could not confirm that this view was opened from your Atlassian site. "
                  "Reload the page; if this keeps happening, ask your site administrator to "
                  "check Inflow's installation.")


def get_db(app: Flask | None = None) -> Database:
    """The app's Database (set up by connect.init_app)."""
    return (app or current_app).extensions["inflow.db"]


def token_from_request() -> str | None:
    """The JWT from `Authorization: JWT …` or the `jwt` query parameter."""
    return token_from(request.headers.get("Authorization", ""), request.args.get("jwt"))


def token_from(authorization: str, query_token: str | None) -> str | None:
    """The JWT of a request from its Authorization header, else its `jwt` query parameter."""
    if authorization[:4].upper() == "JWT ":
        return authorization[4:].strip() or None
    return query_token or None


@functools.lru_cache(maxsize=8)
def _base_path(base_url: str) -> str:
    return urlsplit(base_url).path


def request_facts() -> RequestFacts:
    """Method, path and query of the current request, relative to our base URL."""
    return facts_of(request.method, request.path, request.query_string,
                    current_app.config["INFLOW_BASE_URL"])


def facts_of(method: str, path: str, raw_query: bytes, base_url: str) -> RequestFacts:
    """What the verifier needs of a request, from its raw parts (no Flask request needed)."""
    query = parse_query(raw_query.decode("utf-8", errors="replace"))
    return RequestFacts(method=method, path=path, query=query, base_path=_base_path(base_url))


def load_installed_tenant(client_key: str, db: Database | None = None) -> Tenant | None:
    """An installed tenant by client key (the verified issuer), else None."""
    with (db or get_db()).session() as session:
        return session.scalar(
            select(Tenant).where(Tenant.client_key == client_key, Tenant.installed.is_(True))
        )


class TenantCache:
    """Installed tenants by client key, kept briefly per process (every iframe load reads one).

    Why it is safe: a tenant row changes only on install, uninstall, enable or disable. Any ORM
    change of a tenant in this process forgets it at once (see `_forget_changed_tenant`); other
    processes see it within `ttl` seconds, and a token whose signature fails against a cached
    secret (a reinstall rotated it) is checked again against the stored row.
    """

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._rows: dict[tuple[str, str], tuple[float, Tenant]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Tenant | None:
        """The cached row for (database URL, client key) when still fresh, else None."""
        hit = self._rows.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def put(self, key: tuple[str, str], tenant: Tenant) -> None:
        """Keep a freshly loaded installed tenant (detached: read-only from here on)."""
        with self._lock:
            if len(self._rows) > 10_000:
                self._rows.clear()
            self._rows[key] = (time.monotonic() + self.ttl, tenant)

    def forget(self, key: tuple[str, str] | None = None) -> None:
        """Drop one tenant, or all of them."""
        with self._lock:
            if key is None:
                self._rows.clear()
            else:
                self._rows.pop(key, None)


TENANTS = TenantCache()


@event.listens_for(Tenant, "after_insert")
@event.listens_for(Tenant, "after_update")
@event.listens_for(Tenant, "after_delete")
def _forget_changed_tenant(_mapper: Any, _connection: Any, target: Tenant) -> None:
    TENANTS.forget()  # all of them: the client key itself may be what changed (rare)


def verify_current_request(allow_context_qsh: bool = False) -> Verified:
    """Run the ordered verifier on the current request; raises JWTRejected."""
    token = token_from_request()
    if not token:
        raise JWTRejected("Missing JWT")
    return verify_token(token, request_facts(), get_db(), allow_context_qsh)


def _secret(tenant: Tenant) -> str:
    return tenant.shared_secret


def verify_token(token: str, facts: RequestFacts, db: Database,
                 allow_context_qsh: bool = False) -> Verified:
    """The ordered verifier with the per-process tenant cache; raises JWTRejected.

    Needs no Flask request, so a WSGI layer in front of the app can verify exactly as a view does.
    """
    url = db.url
    cached: list[tuple[str, str]] = []

    def from_cache(client_key: str) -> Tenant | None:
        tenant = TENANTS.get((url, client_key))
        if tenant is not None:
            cached.append((url, client_key))
            return tenant
        tenant = load_installed_tenant(client_key, db)
        if tenant is not None:
            TENANTS.put((url, client_key), tenant)
        return tenant

    try:
        return verify_symmetric(token, facts, from_cache, _secret,
                                allow_context_qsh=allow_context_qsh)
    except BadSignature:
        if not cached:
            raise
        # Maybe a stale cached secret (a reinstall rotated it): judge the token against the
        # stored row, once. Only a bad signature can mean that; an expired token or a wrong qsh
        # fails whatever the secret, so those never cost a database read.
        TENANTS.forget(cached[0])
        return verify_symmetric(token, facts, lambda key: load_installed_tenant(key, db), _secret,
                                allow_context_qsh=allow_context_qsh)


def require_jwt(context: bool = False, product: str | None = None) -> Callable[[F], F]:
    """Require a valid tenant JWT; `context=True` also accepts `qsh: context-qsh` tokens.

    `product`: only that product's installations (a module of the other product's descriptor
    is refused with 403). On success sets g.tenant (Tenant), g.jwt_claims and g.account_id
    (the `sub`, may be None).
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            verified: Verified
            if context and request.headers.get("Authorization", "")[:7].lower() == "bearer ":
                from connect.forge import verify_forge_request  # Forge Remote: same routes, FIT
                verified = verify_forge_request()
            else:
                verified = verify_current_request(allow_context_qsh=context)
            if product is not None and verified.tenant.product_type != product:
                raise JWTRejected(f"This view is for {product.capitalize()} installations", status=403)
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
        advice, detail = _advice(exc)
        page = render_template_string(_ERROR_PAGE, advice=advice, detail=detail)
        response = current_app.response_class(page, mimetype="text/html")
    response.status_code = exc.status
    return response


def _advice(exc: JWTRejected) -> tuple[str, str | None]:
    """What a person is told (what happened, what to do) and the detail for an administrator."""
    if isinstance(exc, Expired):
        return EXPIRED_ADVICE, None  # nothing to fix: reloading the page signs a new URL
    if exc.status == 401:
        return REFUSED_ADVICE, exc.message  # "Missing JWT" means nothing to a person
    return exc.message, None  # a 403's message is already a sentence


def init_app(app: Flask) -> None:
    """Register the rejection handler."""
    app.register_error_handler(JWTRejected, render_rejection)
