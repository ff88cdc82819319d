"""Cached views answered in front of Flask: a repeat view costs its checks, not Flask's machinery.

Why: Jira loads every panel of the app on each issue view, and most views are repeats the
fragment cache holds. Once it holds them, Flask's request machinery (contexts, routing, hooks,
the response object) cost more CPU than the view's own work: the issue view is as slow as its
slowest panel, and each panel paid that twice over. This layer runs, for every cached view
alike, what a route does on a cache hit, with the same code and in the same order: the Connect
JWT (signature, times, qsh, installed tenant) through `connect.auth.verify_token`, the view's
key (`fragments.key_of`), its facts through `panel_cache.hit` (which records the adoption
events), the security headers, the latency sample and the renewal ahead of expiry. Anything
else (another method, a Forge token, a token it refuses, a miss or a changed fact, a database
error) goes to Flask untouched, which answers as it always does.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from connect.auth import facts_of, token_from, verify_token
from connect.headers import is_chunked, security_headers
from connect.jwt import JWTRejected, RequestFacts
from plugin.metrics import observe_request
from plugin.services import panel_cache
from plugin.views import fragments, renewal

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# The request hooks a hit answers for (timing, security headers). Any other hook could change a
# response, so with one the layer stays off rather than answer differently from Flask.
# A URL the refusing hook turns away is never rendered, so never cached: no hit can be for one;
# a request with a body (which the size hook may refuse) is Flask's to judge (`_asked`).
HOOKS = frozenset({"before_request plugin.metrics._start_timer",
                   "before_request connect.headers.refuse_unstorable_url",
                   "before_request connect.headers.refuse_oversized_body",
                   "after_request connect.headers.add_security_headers",
                   "after_request plugin.metrics._observe"})


class CachedViews:
    """WSGI middleware: cached views answered here, every other request by `wrapped`."""

    def __init__(self, app: Flask, wrapped: WSGIApp) -> None:
        self.app = app
        self.wrapped = wrapped

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET":
            started = time.perf_counter()
            answer = self.hit(environ)
            if answer is not None:
                entry, headers = answer
                start_response("200 OK", headers)
                observe_request("GET", entry.endpoint, 200, started)
                return [entry.body]
        return self.wrapped(environ, start_response)

    def hit(self, environ: dict[str, Any]) -> tuple[panel_cache.Fragment, list[tuple[str, str]]] | None:
        """The cached view this request may see with its headers, else None (Flask answers)."""
        asked = self._asked(environ)
        if asked is None:
            return None
        facts, token = asked
        db = self.app.extensions["inflow.db"]  # as get_db() reads it
        try:
            verified = verify_token(token, facts, db)
            key = fragments.key_of(db.url, verified.tenant.id, facts.path,
                                   environ.get("QUERY_STRING", ""), verified.account_id)
            entry = fragments.hit(self.app, environ, db.engine, key)
        except (JWTRejected, SQLAlchemyError):
            return None  # Flask verifies again and refuses, or answers the database error
        except Exception:
            log.exception("cached view layer failed; Flask answers the request")
            return None
        if entry is None:
            return None
        mimetype = entry.content_type.split(";", 1)[0].strip().lower()
        return entry, [("Content-Type", entry.content_type),
                       ("Content-Length", str(len(entry.body))),
                       *security_headers(verified.tenant, mimetype, 200)]

    def _asked(self, environ: dict[str, Any]) -> tuple[RequestFacts, str] | None:
        """The verifier's facts and the token of a request this layer may answer, as Flask reads them."""
        config = self.app.config
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        # Host checks, non-ASCII (decoded differently by werkzeug), a Forge token, a renewal
        # (which must render) or a body (no host view sends one) are Flask's to judge.
        if config.get("SERVER_NAME") or config.get("TRUSTED_HOSTS") or environ.get(renewal.ENVIRON_KEY) \
                or (environ.get("CONTENT_LENGTH") or "0") != "0" or is_chunked(environ) \
                or environ.get("SCRIPT_NAME") or not (path.isascii() and query.isascii()) \
                or (authorization and authorization[:4].upper() != "JWT ") \
                or not path.startswith(fragments.ROUTES) or not fragments.enabled(config):
            return None
        facts = facts_of("GET", "/" + path.lstrip("/"), query.encode("ascii"), config["INFLOW_BASE_URL"])
        jwt = None
        for name, value in facts.query:
            if "\ufffd" in name or "\ufffd" in value:
                return None  # an invalid escape: werkzeug keeps it percent-encoded, we would not
            if name == "jwt" and jwt is None:
                jwt = value  # request.args.get() gives the first value
        token = token_from(authorization, jwt)
        return (facts, token) if token else None


def route_hooks(app: Flask) -> set[str]:
    """Every request hook the app runs, app-wide or in any blueprint."""
    kinds: dict[str, Mapping[str | None, Sequence[Callable[..., Any]]]] = {
        "before_request": app.before_request_funcs, "after_request": app.after_request_funcs,
        "teardown_request": app.teardown_request_funcs,
        "url_value_preprocessor": app.url_value_preprocessors}
    hooks = {f"{kind} {f.__module__}.{f.__qualname__}" for kind, funcs in kinds.items()
             for scoped in funcs.values() for f in scoped}
    hooks |= {f"teardown_appcontext {f.__module__}.{f.__qualname__}"
              for f in app.teardown_appcontext_funcs}
    return hooks


def init_app(app: Flask) -> None:
    """Put the layer in front of the app's WSGI callable; call last, once every hook is known."""
    unknown = route_hooks(app) - HOOKS
    if unknown:
        log.warning("cached views are answered by Flask only: request hooks the front layer does "
                    "not know: %s", sorted(unknown))
        return
    app.wsgi_app = CachedViews(app, app.wsgi_app)  # type: ignore[method-assign]
