"""A WSGI layer in front of Flask that answers repeat views of the Jira reuse panel directly.

Why: a repeat view is the most frequent request Inflow serves, and once the fragment cache holds
the panel, Flask's request machinery (request and app contexts, routing, hooks, the response
object) cost more CPU than the view's own work. This layer does exactly what the Flask route does
on a cache hit, in the same order of checks and with the same code: the Connect JWT (signature,
times, qsh, installed tenant) through `connect.auth.verify_token`, the fragment and its stamp
through `panel_cache.reuse_hit` (which records the adoption events), the same security headers
and the same request-latency sample. Anything else — another route or method, a missing or
rejected token, a bad issue key, a cache miss or a stale stamp, a database error — goes to the
Flask app untouched, which then answers (and renders, refuses or fails) as it always did.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from connect.auth import facts_of, token_from, verify_token
from connect.headers import security_headers
from connect.jwt import JWTRejected, RequestFacts
from plugin.config import parse_boolean
from plugin.metrics import observe_request
from plugin.services.panel_cache import reuse_hit
from plugin.views.common import project_of
from plugin.views.fragments import enabled

log = logging.getLogger(__name__)

PATH = "/jira/panels/reuse"
ENDPOINT = "jira_pages.issue_panel"  # the Flask route it stands in for (the metrics label)
CONTENT_TYPE = "text/html; charset=utf-8"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# The request hooks a hit answers for (timing, security headers). Any other hook on the route
# could change the response, so the fast path stays off rather than answer differently.
HOOKS = frozenset({"before_request plugin.metrics._start_timer",
                   "after_request connect.headers.add_security_headers",
                   "after_request plugin.metrics._observe"})


class ReusePanelFastPath:
    """WSGI middleware: cached reuse-panel hits answered here, every other request by `wrapped`."""

    def __init__(self, app: Flask, wrapped: WSGIApp) -> None:
        self.app = app
        self.wrapped = wrapped

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "GET":
            started = time.perf_counter()
            answer = self.hit(environ)
            if answer is not None:
                headers, body = answer
                start_response("200 OK", headers)
                observe_request("GET", ENDPOINT, 200, started)
                return [body]
        return self.wrapped(environ, start_response)

    def hit(self, environ: dict[str, Any]) -> tuple[list[tuple[str, str]], bytes] | None:
        """Headers and body of a cached panel this request may see, else None (Flask answers)."""
        parsed = self._parse(environ)
        if parsed is None:
            return None
        facts, token, key, given_project = parsed
        db = self.app.extensions["inflow.db"]  # as get_db() reads it
        try:
            verified = verify_token(token, facts, db)
            project = project_of("jira", key, given_project)
            cache_key = (db.url, verified.tenant.id, "reuse", "jira", key, project,
                         verified.account_id)
            entry = reuse_hit(db.engine, cache_key)
        except (JWTRejected, SQLAlchemyError):
            return None  # Flask verifies again and refuses, or answers the database error
        except Exception:
            log.exception("reuse panel fast path failed; Flask answers the request")
            return None
        if entry is None:
            return None
        body = entry.body
        headers = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body))),
                   *security_headers(verified.tenant, "text/html", 200)]
        return headers, body

    def _parse(self, environ: dict[str, Any]) -> tuple[RequestFacts, str, str, str | None] | None:
        """The verifier's facts, the token, issue key and projectKey, read as Flask reads them."""
        config = self.app.config
        query_string = environ.get("QUERY_STRING", "")
        # Host checks or a non-ASCII query (decoded differently by werkzeug) are Flask's to judge.
        if config.get("SERVER_NAME") or config.get("TRUSTED_HOSTS") or not query_string.isascii():
            return None
        if not enabled(config):
            return None
        facts = facts_of("GET", PATH, query_string.encode("ascii"), config["INFLOW_BASE_URL"])
        args: dict[str, str] = {}
        for name, value in facts.query:
            if "\ufffd" in name or "\ufffd" in value:
                return None  # an invalid escape: werkzeug keeps it percent-encoded, we would not
            args.setdefault(name, value)  # request.args.get() gives the first value
        token = token_from(environ.get("HTTP_AUTHORIZATION", ""), args.get("jwt"))
        key = args.get("issueKey", "").strip()
        if not token or not key or len(key) > 255:
            return None
        return facts, token, key, args.get("projectKey")


def route_hooks(app: Flask) -> set[str]:
    """Every request hook that runs for the reuse panel's route (app-wide and its blueprint's)."""
    kinds: dict[str, Mapping[str | None, Sequence[Callable[..., Any]]]] = {
        "before_request": app.before_request_funcs, "after_request": app.after_request_funcs,
        "teardown_request": app.teardown_request_funcs,
        "url_value_preprocessor": app.url_value_preprocessors}
    hooks = {f"{kind} {f.__module__}.{f.__qualname__}" for kind, funcs in kinds.items()
             for scope in (None, ENDPOINT.split(".")[0]) for f in funcs.get(scope, ())}
    hooks |= {f"teardown_appcontext {f.__module__}.{f.__qualname__}"
              for f in app.teardown_appcontext_funcs}
    return hooks


def install(app: Flask) -> None:
    """Put the fast path in front of the app's WSGI callable (gunicorn still serves `app`).

    INFLOW_FAST_PATH=0 (Settings, or a test's config) leaves every request to Flask.
    """
    if not parse_boolean(app.config.get("INFLOW_FAST_PATH"), True, "INFLOW_FAST_PATH"):
        return
    unknown = route_hooks(app) - HOOKS
    if unknown:
        log.warning("reuse panel fast path off: request hooks it does not know: %s",
                    sorted(unknown))
        return
    app.wsgi_app = ReusePanelFastPath(app, app.wsgi_app)  # type: ignore[method-assign]
