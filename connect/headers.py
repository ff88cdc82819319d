"""HTTP hygiene for every response: security headers, JSON errors and JSON request bodies."""
from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from connect.strings import all_storable, cleaned

log = logging.getLogger(__name__)

ALL_JS_ORIGIN = "https://connect-cdn.atl-paas.net"
ALL_JS_URL = f"{ALL_JS_ORIGIN}/all.js"  # Atlassian asks apps to load it from there, never a copy
# Unauthenticated pages may still be framed by any Atlassian Cloud site (e.g. an error page).
DEFAULT_FRAME_ANCESTORS = ("'self'", "https://*.atlassian.net", "https://*.jira.com")
# The rest of the policy: our own assets plus Atlassian's all.js; no plugins, no foreign forms.
BASE_POLICY = (
    "default-src 'self'",
    f"script-src 'self' {ALL_JS_ORIGIN}",
    # Inline styles only (all.js and panels set them); no inline script is ever allowed.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: https:",  # avatars come from the sites and Atlassian's avatar CDN
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
)
JSON_ERROR_CODES = frozenset({400, 404, 405, 413, 415, 422})
JSON_PATH_PREFIXES = ("/api/", "/webhooks/", "/forge/")
LIFECYCLE_PATHS = frozenset({"/installed", "/uninstalled", "/enabled", "/disabled"})
_ORIGIN_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?\Z")


def site_origin(url: str | None) -> str | None:
    """scheme://host[:port] of a stored site URL, or None if it is not a plain http(s) URL."""
    if not url:
        return None
    parts = urlsplit(url)
    # A stored URL is host-controlled text: only a clean origin may enter a header.
    if parts.scheme not in ("http", "https") or not _ORIGIN_HOST.match(parts.netloc or ""):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def frame_ancestors() -> list[str]:
    """Who may frame this response: the verified tenant's sites, else any Atlassian Cloud site."""
    tenant = g.get("tenant")
    if tenant is None:
        return list(DEFAULT_FRAME_ANCESTORS)
    return list(_site_ancestors(tenant.base_url, tenant.display_url))


@functools.lru_cache(maxsize=1024)
def _site_ancestors(*urls: str | None) -> tuple[str, ...]:
    origins = ["'self'"]
    for url in urls:
        origin = site_origin(url)
        if origin and origin not in origins:
            origins.append(origin)
    return tuple(origins)


@functools.lru_cache(maxsize=1024)
def _policy(ancestors: tuple[str, ...]) -> str:
    # Built once per set of sites: every framed page of a tenant sends the same policy.
    return "; ".join((*BASE_POLICY, "frame-ancestors " + " ".join(ancestors)))


def content_security_policy() -> str:
    """The CSP for the current request."""
    return policy_for(g.get("tenant"))


def policy_for(tenant: Any | None) -> str:
    """The CSP of a response to `tenant`'s site (None: not authenticated)."""
    if tenant is None:
        return _policy(DEFAULT_FRAME_ANCESTORS)
    return _policy(_site_ancestors(tenant.base_url, tenant.display_url))


def add_security_headers(response: Response) -> Response:
    """CSP, referrer, nosniff and no-store headers; never X-Frame-Options (we live in iframes)."""
    tenant = g.get("tenant")
    for name, value in security_headers(tenant, response.mimetype, response.status_code):
        response.headers[name] = value
    response.headers.pop("X-Frame-Options", None)
    return response


def security_headers(tenant: Any | None, mimetype: str | None,
                     status: int) -> list[tuple[str, str]]:
    """The security headers of a response to `tenant`'s site (None: not authenticated), in order."""
    headers = [("Content-Security-Policy", policy_for(tenant)),
               ("Referrer-Policy", "strict-origin-when-cross-origin"),
               ("X-Content-Type-Options", "nosniff")]
    # Errors (a refused iframe page included) must never be served from a cache either.
    if tenant is not None or mimetype == "application/json" or status >= 400:
        headers.append(("Cache-Control", "no-store"))
    return headers


def wants_json_errors() -> bool:
    """True for the JSON endpoints: the API, webhooks, Forge and lifecycle callbacks."""
    return request.path.startswith(JSON_PATH_PREFIXES) or request.path in LIFECYCLE_PATHS


def json_error(status: int, error: str, message: str) -> Response:
    """A short JSON error response."""
    response = jsonify({"error": error, "message": message})
    response.status_code = status
    return response


def render_http_error(exc: HTTPException) -> Any:
    """JSON 4xx for JSON endpoints; everything else keeps its normal (HTML) rendering."""
    if exc.code in JSON_ERROR_CODES and wants_json_errors():
        error = (exc.name or "error").lower().replace(" ", "_")
        response = json_error(exc.code or 400, error, exc.description or exc.name)
        methods = getattr(exc, "valid_methods", None)  # MethodNotAllowed's
        if exc.code == 405 and methods:
            response.headers["Allow"] = ", ".join(methods)
        return response
    return exc


def database_unavailable(exc: Exception) -> Response:
    """503 with Retry-After so the host retries; the request stored nothing."""
    log.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
    response = json_error(503, "unavailable", "Storage is unavailable; retry later")
    response.headers["Retry-After"] = "30"
    return response


# Why: json reads what nests up to about 930 levels from where a view reads it, but storing or
# answering it serialises it again from deeper in the stack, where a body just under json's limit
# ran out of recursion (a 500). ADF and every other body the products send nest far less.
MAX_NESTING = 512


def nests_deeper(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value has arrays or objects nested more than `limit` deep."""
    pending = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:  # without recursion: the value may nest deeper than Python recurses
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def request_body() -> bytes:
    """The request body; 413 when it is over MAX_CONTENT_LENGTH, its length declared or not."""
    raw = request.get_data(cache=True)  # raises 413 when the declared length is over the limit
    limit = request.max_content_length
    # Why: a body without Content-Length (chunked) is read up to the limit and silently cut
    # there, so a longer one reached the view as its first MiB (a 400, or a valid JSON object
    # stored). One byte more in the input means it was longer.
    if limit is not None and request.content_length is None and len(raw) >= limit \
            and request.environ["wsgi.input"].read(1):
        abort(413)
    return raw


def read_json_object(clean: bool = False) -> dict[str, Any]:
    """The request body as a JSON object: 413 when too large, 400 when not a JSON object.

    Text no database stores (NUL, a lone surrogate, 1e400) is a 400, or with `clean` (what a
    host signed: the site's own content) stored as well as it can be (`strings.cleaned`).
    """
    raw = request_body()
    too_deep = f"Request body nests deeper than {MAX_NESTING} levels"
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except ValueError:  # includes UnicodeDecodeError; NaN cannot be stored
        abort(400, description="Request body is not valid JSON")
    except RecursionError:  # valid JSON perhaps, but deeper than json reads: say so
        abort(400, description=too_deep)
    if not isinstance(body, dict):
        abort(400, description="Request body must be a JSON object")
    # Counting brackets first: only a body with that many can nest that deep (the walk is dearer).
    if raw.count(b"[") + raw.count(b"{") > MAX_NESTING and nests_deeper(body, MAX_NESTING):
        abort(400, description=too_deep)
    if not all_storable(body):
        if clean:
            return cleaned(body)
        abort(400, description="Request body holds text or a number that cannot be stored")
    return body


def refuse_unstorable_url() -> None:
    """400 for a path or query holding a NUL (%00): no database stores it, so no view may use it."""
    if "\x00" in request.path or any("\x00" in name or "\x00" in value
                                      for name, value in request.args.items(multi=True)):
        abort(400, description="The address holds a NUL character")


def refuse_oversized_body() -> None:
    """413 for a body larger than the app takes, on every route, its length declared or chunked.

    Why: the limit was enforced when a view read its body, so a route that reads none (accepting
    an answer, say) took a body of any size and answered 200. A chunked body declares no length:
    it is read here (kept for the view) up to the limit.
    """
    limit = request.max_content_length
    if limit is not None and request.content_length is not None and request.content_length > limit:
        abort(413)
    if request.content_length is None and is_chunked(request.environ):
        request_body()


def is_chunked(environ: Mapping[str, Any]) -> bool:
    """Whether the request's body comes in chunks (so declares no length)."""
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def init_app(app: Flask) -> None:
    """Security headers on every response and JSON errors for the JSON endpoints."""
    app.before_request(refuse_unstorable_url)
    app.before_request(refuse_oversized_body)
    app.after_request(add_security_headers)
    app.register_error_handler(HTTPException, render_http_error)
    # A busy or unreachable database (SQLite's write lock held past the busy timeout, a
    # PostgreSQL restart) is the server's state, not the client's fault: 503, never a 500.
    for error in (OperationalError, InterfaceError, PoolTimeoutError):
        app.register_error_handler(error, database_unavailable)
