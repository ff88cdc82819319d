"""The reuse panel served from the per-process fragment cache when nothing it shows has changed."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app, g

from connect.auth import get_db
from plugin.config import parse_boolean
from plugin.services.panel_cache import (
    FRAGMENTS,
    Fragment,
    Horizon,
    reuse_hit,
    reuse_stamp,
    servable,
)
from plugin.services.permissions import CACHE as PERMISSIONS
from plugin.services.permissions import TTL_SECONDS


def enabled(config: Mapping[str, Any] | None = None) -> bool:
    """The cache is on unless INFLOW_PANEL_CACHE (Settings, or a test's config) says off."""
    config = current_app.config if config is None else config
    return parse_boolean(config.get("INFLOW_PANEL_CACHE"), True, "INFLOW_PANEL_CACHE")


def cached_reuse(source: str, key: str, project: str | None,
                 render: Callable[[], tuple[str, list[int]]]) -> Any:
    """The reuse panel's HTML: from the cache when its stamp still matches, else `render()`.

    `render` returns the HTML and the ids of the suggestions it showed; it is called with
    `g.inflow_horizon` set, so the entry expires with the permission answers it used.
    """
    db, tenant_id, viewer = get_db(), g.tenant.id, g.account_id
    cache_key = (db.url, tenant_id, "reuse", source, key, project, viewer)
    entry = reuse_hit(db.engine, cache_key)
    if entry is not None:
        return entry.html
    FRAGMENTS.misses += 1
    # Read before rendering: a change in between shows on the next view.
    before = reuse_stamp(db.engine, tenant_id, source, key, project, viewer, ())
    g.inflow_horizon = horizon = Horizon(TTL_SECONDS, PERMISSIONS.generation)
    html, shown = render()
    if servable(before):
        # Every item shown existed when rendered: a hit needs all of them still there.
        stamp = (*before[:-1], str(len(shown)))
        FRAGMENTS.put(cache_key, Fragment(html, stamp, tuple(shown), horizon.until,
                                          horizon.generation))
    return html
