"""Every panel, macro and byline view answered from the per-process cache while nothing it showed
changed (`plugin.services.panel_cache`): the one place the routes consult it."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Response, current_app, g

from connect.auth import get_db
from plugin.config import parse_boolean
from plugin.services import freshness, panel_cache
from plugin.services.freshness import Fact
from plugin.services.panel_cache import FRAGMENTS, Watch
from plugin.services.permissions import TTL_SECONDS
from plugin.views import common, renewal


def enabled(config: Mapping[str, Any] | None = None) -> bool:
    """The cache is on unless INFLOW_PANEL_CACHE (Settings, or a test's config) says off."""
    config = current_app.config if config is None else config
    return parse_boolean(config.get("INFLOW_PANEL_CACHE"), True, "INFLOW_PANEL_CACHE")


def cached(parts: Sequence[Any], facts: list[Fact], render: Callable[[], Any]) -> Any:
    """The view's response from the cache while its facts are unchanged, else `render()`'s.

    `parts` name everything the route was asked (with the tenant and the viewer they make the
    key); `facts` are what the view declares it depends on, read before `render` runs. The
    render runs with `g.inflow_watch` set, through which it records what only it knows.
    """
    if not enabled():
        return render()
    db, tenant_id = get_db(), g.tenant.id
    key = (db.url, tenant_id, *parts, g.account_id)
    renewing = renewal.renewing()
    entry = None if renewing else panel_cache.hit(db.engine, key)
    if entry is not None:
        if entry.expires_at - time.monotonic() < renewal.AHEAD:
            renewal.ahead(key)
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
    if response.status_code == 200 and not response.is_streamed:
        panel_cache.keep(key, response.get_data(), response.content_type or "", facts, before,
                         watch)
    return response


def not_kept() -> None:
    """The render being cached must not be kept (it could not ask the host what it needed)."""
    watch = g.get("inflow_watch")
    if watch is not None:
        watch.live = True


def watch() -> Watch | None:
    """The current render's watch, when its view may be cached."""
    return g.get("inflow_watch")
