"""Every panel, macro and byline view answered from the per-process cache while nothing it showed
changed (`plugin.services.panel_cache`): the one place the routes consult it."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy import Engine

from connect.auth import get_db
from plugin.config import parse_boolean
from plugin.services import freshness, panel_cache
from plugin.services.freshness import Fact
from plugin.services.panel_cache import FRAGMENTS, Key, Watch
from plugin.services.permissions import TTL_SECONDS
from plugin.views import common, renewal


def enabled(config: Mapping[str, Any] | None = None) -> bool:
    """The cache is on unless INFLOW_PANEL_CACHE (Settings, or a test's config) says off."""
    config = current_app.config if config is None else config
    return parse_boolean(config.get("INFLOW_PANEL_CACHE"), True, "INFLOW_PANEL_CACHE")


# Path prefixes of the routes that kept a view in this process (bounded by the routes): the front
# layer tries nothing else, so no other request pays for a token check twice.
ROUTES: tuple[str, ...] = ()


def key_of(db_url: str, tenant_id: int, path: str, query_string: str, viewer: str | None) -> Key:
    """A cached view's key: the request as asked (its token aside), its tenant and viewer.

    Why the request itself: a route's answer is a function of what it was asked, the tenant and
    the viewer (and of the facts, checked on every hit), so `plugin.views.front` can find the
    view before Flask routes the request.
    """
    asked = "&".join(part for part in query_string.split("&") if not part.startswith("jwt="))
    return (db_url, tenant_id, path, asked, viewer)


def hit(app: Flask, environ: dict[str, Any], engine: Engine, key: Key) -> panel_cache.Fragment | None:
    """The cached view for `key` while unchanged (`panel_cache.hit`), renewed in the background
    when it is near its expiry; the route and `plugin.views.front` both answer hits through it."""
    entry = panel_cache.hit(engine, key)
    if entry is not None and entry.expires_at - time.monotonic() < renewal.AHEAD:
        renewal.ahead(app, environ, key)
    return entry


def cached(facts: list[Fact], render: Callable[[], Any]) -> Any:
    """The view's response from the cache while its facts are unchanged, else `render()`'s.

    `facts` are what the view declares it depends on, read before `render` runs. The render
    runs with `g.inflow_watch` set, through which it records what only it knows.
    """
    if not enabled():
        return render()
    db, tenant_id = get_db(), g.tenant.id
    key = key_of(db.url, tenant_id, request.path, request.environ.get("QUERY_STRING", ""),
                 g.account_id)
    renewing = renewal.renewing()
    entry = None if renewing else hit(current_app._get_current_object(),  # type: ignore[attr-defined]
                                      request.environ, db.engine, key)
    if entry is not None:
        return current_app.response_class(entry.body, content_type=entry.content_type)
    if renewing:
        renewed = panel_cache.extend(db.engine, key, time.monotonic() + renewal.AHEAD,
                                     lambda refs, watch: common.answers(watch)(refs))
        if renewed is not None:
            return current_app.response_class(renewed.body, content_type=renewed.content_type)
    FRAGMENTS.misses += not renewing
    before = freshness.read(db.engine, tenant_id, facts)  # a change from here on shows next time
    g.inflow_watch = watch = Watch(TTL_SECONDS, renew_before=time.monotonic() + renewal.AHEAD if renewing else 0.0)
    response: Response = current_app.make_response(render())
    if response.status_code == 200 and not response.is_streamed and panel_cache.keep(
            db.engine, key, response.get_data(), response.content_type or "", facts, before, watch,
            request.endpoint or ""):
        _route_kept()
    return response


def _route_kept() -> None:
    global ROUTES
    prefix = request.url_rule.rule.split("<", 1)[0] if request.url_rule else ""
    if prefix and prefix not in ROUTES:
        ROUTES = (*ROUTES, prefix)


def not_kept() -> None:
    """The render being cached must not be kept (it could not ask the host what it needed)."""
    watch = g.get("inflow_watch")
    if watch is not None:
        watch.live = True


def watch() -> Watch | None:
    """The current render's watch, when its view may be cached."""
    return g.get("inflow_watch")
