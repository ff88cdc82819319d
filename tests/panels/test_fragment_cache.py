"""The reuse panel's fragment cache: repeats are served from it, and any change shows at once."""
from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from connect.db import utcnow
from plugin.matching.store import delete_item
from plugin.models.content import StoredSuggestion
from plugin.services.freshness import _LOCAL
from plugin.services.panel_cache import EVENTS, FRAGMENTS
from plugin.services.permissions import CACHE
from plugin.services.settings import save_project_settings
from tests.panels.conftest import VIEWER, Site

OTHER = "chirino"


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    FRAGMENTS.clear()


def _page(site: Site, key: str, sub: str | None = VIEWER) -> str:
    response = site.page(f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ", sub=sub)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _shown(html: str) -> list[str]:
    return re.findall(r'data-track="([^"]+)"', html)


def test_a_repeat_view_is_served_from_the_cache_and_still_counted(site: Site) -> None:
    key = site.stored()
    first = _page(site, key)
    hits = FRAGMENTS.hits
    assert _page(site, key) == first and _shown(first)
    assert FRAGMENTS.hits == hits + 1
    EVENTS.flush()  # a cached view's events are written in a batch within a second
    assert site.views("reuse") == 2  # adoption counts every view, cached or not


def test_a_hits_own_sqlite_read_sees_other_writes_and_holds_no_snapshot(site: Site) -> None:
    key = site.stored()
    first = _page(site, key)
    assert _page(site, key) == first  # a hit: the stamp was read on this thread's own connection
    own = _LOCAL.connections[site.db.engine]
    with site.db.engine.begin() as conn:  # a write on another connection, committed
        conn.exec_driver_sql("UPDATE items SET index_seq = index_seq + 1 WHERE key = ?", (key,))
    EVENTS.flush()
    with site.db.engine.connect() as conn:
        busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
    assert busy == 0  # no read transaction left open by the stamp reads
    misses = FRAGMENTS.misses
    _page(site, key)
    assert FRAGMENTS.misses == misses + 1  # the changed item was seen at once
    assert _LOCAL.connections[site.db.engine] is own


def test_live_ranked_panels_are_not_kept(site: Site) -> None:
    key = site.keys[-2]  # no stored suggestions: ranked on the request, from the whole index
    _page(site, key)
    hits = FRAGMENTS.hits
    _page(site, key)
    assert FRAGMENTS.hits == hits


def test_each_viewer_gets_their_own_permissions(site: Site) -> None:
    key = site.stored()
    shown = _shown(_page(site, key))
    site.host.deny(OTHER, shown[0])
    theirs = _shown(_page(site, key, sub=OTHER))
    assert shown[0] not in theirs
    assert _shown(_page(site, key)) == shown


def test_a_permission_answer_dropped_early_ends_the_entry(site: Site) -> None:
    key = site.stored()
    shown = _shown(_page(site, key))
    site.host.deny(VIEWER, shown[0])
    CACHE.clear()  # as a reinstall does; expiry after 60 s ends entries the same way
    assert shown[0] not in _shown(_page(site, key))


def test_the_viewers_verdict_shows_at_once(site: Site) -> None:
    key = site.stored()
    html = _page(site, key)
    target = re.search(r'data-group="fb-(\d+)"', html).group(1)
    body = {"source": "jira", "key": key, "target_item_id": int(target), "verdict": "helped"}
    assert site.post("/api/feedback", body).status_code == 200
    assert 'aria-pressed="true"' in _page(site, key)
    assert site.post("/api/feedback", {**body, "verdict": "not_relevant"}).status_code == 200
    assert _page(site, key).count('aria-pressed="true"') == 1


def test_settings_and_refreshed_suggestions_show_at_once(site: Site) -> None:
    key = site.stored()
    shown = _shown(_page(site, key))
    with site.db.session() as session:
        row = session.scalars(select(StoredSuggestion).where(
            StoredSuggestion.tenant_id == site.tenant.tenant_id,
            StoredSuggestion.kind == "reuse")).one()
        row.payload = row.payload[1:]  # as a refresh after an event that changed the ranking
        row.computed_at = utcnow()
    assert _shown(_page(site, key))[:len(shown) - 1] == shown[1:]
    with site.db.session() as session:
        save_project_settings(session, site.tenant.tenant_id, "AMQ",
                              {"panels": {"reuse": False}}, "admin")
    assert "turned this panel off" in _page(site, key)


def test_a_deleted_suggestion_disappears_at_once(site: Site) -> None:
    key = site.stored()
    shown = _shown(_page(site, key))
    with site.db.session() as session:
        assert delete_item(session, site.tenant.tenant_id, "jira", shown[0])
    assert shown[0] not in _shown(_page(site, key))


def test_the_cache_can_be_turned_off(site: Site) -> None:
    key = site.stored()
    site.app.config["INFLOW_PANEL_CACHE"] = "0"
    first = _page(site, key)
    hits, misses = FRAGMENTS.hits, FRAGMENTS.misses
    assert _page(site, key) == first
    assert (FRAGMENTS.hits, FRAGMENTS.misses) == (hits, misses)


def test_a_cached_views_events_are_written_within_a_second_or_so(site: Site) -> None:
    key = site.stored()
    _page(site, key)
    _page(site, key)  # from the cache: its events wait in the per-process buffer
    deadline = time.monotonic() + 5
    while site.views("reuse") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert site.views("reuse") == 2
