"""Permission answers asked ahead: once an item's suggestions changed, the worker asks the host
about them for the people who opened the item lately, so their next view does not wait for it."""
from __future__ import annotations

import re
import time

import pytest
from redis import Redis

from jobs import pipeline, warming
from plugin.matching.store import get_item
from plugin.services.panel_cache import FRAGMENTS
from plugin.services.permissions import CACHE, SharedAnswers, TTLCache, _item_ref
from tests.panels.conftest import VIEWER, Site

CHECKS = "/rest/api/3/permissions/check"


@pytest.fixture
def shared(site: Site, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> SharedAnswers:
    """The app's processes share answers through Redis; the worker reads the site's database."""
    monkeypatch.setenv("DATABASE_URL", str(site.db.engine.url))
    monkeypatch.setenv("INFLOW_APP_KEY", site.host.app_key)
    answers = site.app.extensions["inflow.answers"] = SharedAnswers(Redis.from_url(redis_url))
    FRAGMENTS.clear()
    return answers


def _view(site: Site, key: str, sub: str = VIEWER) -> list[str]:
    response = site.page(f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ", sub=sub)
    assert response.status_code == 200
    return re.findall(r'data-track="([^"]+)"', response.get_data(as_text=True))


def _as_if_the_suggestions_were_new() -> None:
    """Nobody holds an answer on them any more, here or in Redis; no view is cached."""
    CACHE.clear()
    FRAGMENTS.clear()


def _item_id(site: Site, key: str) -> int:
    with site.db.session() as session:
        return get_item(session, site.tenant.tenant_id, "jira", key).id


def test_the_next_view_after_a_change_finds_the_answers_the_worker_asked_for(
        site: Site, shared: SharedAnswers) -> None:
    key = site.stored()
    shown = _view(site, key)
    assert shared.viewers(site.tenant.tenant_id, ("jira", key)) == [VIEWER]
    _as_if_the_suggestions_were_new()
    site.host.deny(VIEWER, shown[0])  # what the host says now is what the warmed answers say
    assert warming.warm_viewers(shared.connection, site.tenant.tenant_id, _item_id(site, key)) == 1
    TTLCache.clear(CACHE)  # another web process: only the shared answers
    FRAGMENTS.clear()
    checks = len(site.host.calls_to(CHECKS))
    after = _view(site, key)
    assert shown[0] not in after and after[:len(shown) - 1] == shown[1:]
    assert len(site.host.calls_to(CHECKS)) == checks  # the view did not wait for the host


def test_only_recent_viewers_are_asked_about_and_fresh_answers_are_not_asked_again(
        site: Site, shared: SharedAnswers) -> None:
    key, other = site.stored(), site.stored(-2)
    _view(site, other, sub="someone-else")
    item_id = _item_id(site, key)
    assert warming.warm_viewers(shared.connection, site.tenant.tenant_id, item_id) == 0  # never opened
    _view(site, key)
    assert warming.warm_viewers(shared.connection, site.tenant.tenant_id, item_id) == 0  # answers held
    _as_if_the_suggestions_were_new()
    checks = len(site.host.calls_to(CHECKS))
    assert warming.warm_viewers(shared.connection, site.tenant.tenant_id, item_id) == 1
    assert len(site.host.calls_to(CHECKS)) == checks + 1  # one bulk check for the viewer


def _ref(site: Site, key: str) -> tuple[str, str]:
    with site.db.session() as session:
        return _item_ref(get_item(session, site.tenant.tenant_id, "jira", key))


def test_a_changed_items_neighbours_viewers_are_asked_about_it(site: Site, shared: SharedAnswers) -> None:
    """It is about to enter their suggestions: the next view of a neighbour finds the answer."""
    key, neighbour = site.stored(), site.stored(-2)
    _view(site, neighbour, sub="someone-else")
    _as_if_the_suggestions_were_new()
    tenant_id, ref = site.tenant.tenant_id, _ref(site, key)
    assert ref not in shared.get(tenant_id, "someone-else", [ref])
    checks = len(site.host.calls_to(CHECKS))
    changed, around = _item_id(site, key), [_item_id(site, neighbour)]
    assert warming.warm_viewers(shared.connection, tenant_id, changed, around) == 1
    assert len(site.host.calls_to(CHECKS)) == checks + 1
    assert shared.get(tenant_id, "someone-else", [ref])[ref][1] is True
    assert warming.warm_viewers(shared.connection, tenant_id, changed, around) == 0  # held now


def test_neighbours_viewers_wait_while_warming_lags(site: Site, shared: SharedAnswers,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    key, neighbour = site.stored(), site.stored(-2)
    _view(site, neighbour, sub="someone-else")
    _as_if_the_suggestions_were_new()
    monkeypatch.setattr(warming, "BEHIND", 0)  # as if a burst of refreshes queued ahead
    warming.after_refresh(shared.connection, site.tenant.tenant_id, _item_id(site, key),
                          [_item_id(site, neighbour)])
    _settle()
    ref = _ref(site, key)
    assert ref not in shared.get(site.tenant.tenant_id, "someone-else", [ref])


def _settle() -> None:
    deadline = time.monotonic() + 10
    while warming._waiting and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not warming._waiting


def test_a_refresh_warms_off_its_thread_and_a_refusing_host_loses_nothing(
        site: Site, shared: SharedAnswers) -> None:
    key = site.stored()
    shown = _view(site, key)
    _as_if_the_suggestions_were_new()
    checks = len(site.host.calls_to(CHECKS))
    site.host.inject(CHECKS, 400, times=1)
    warming.after_refresh(shared.connection, site.tenant.tenant_id, _item_id(site, key))
    _settle()
    assert len(site.host.calls_to(CHECKS)) == checks + 1  # the worker's, refused
    assert _view(site, key) == shown  # the view asked the host itself
    assert len(site.host.calls_to(CHECKS)) == checks + 2


def _refresh_as_neighbour(site: Site, shared: SharedAnswers, key: str) -> None:
    tenant_id = site.tenant.tenant_id
    member = f"{pipeline.NEIGHBOUR}{_item_id(site, key)}"
    assert pipeline._refresh_member(shared.connection, pipeline.refresh_key(tenant_id), tenant_id, member)
    _settle()


def test_a_neighbours_refresh_warms_its_own_viewers_answers(site: Site, shared: SharedAnswers) -> None:
    """A change reorders its neighbours' suggestions too: their viewers' next view finds the answers."""
    key = site.stored()
    shown = _view(site, key)
    _as_if_the_suggestions_were_new()
    _refresh_as_neighbour(site, shared, key)
    TTLCache.clear(CACHE)  # another web process: only the shared answers
    FRAGMENTS.clear()
    checks = len(site.host.calls_to(CHECKS))
    assert _view(site, key) == shown
    assert len(site.host.calls_to(CHECKS)) == checks  # the view did not wait for the host


def test_a_neighbours_refresh_does_not_warm_while_warming_lags(site: Site, shared: SharedAnswers,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    key = site.stored()
    _view(site, key)
    _as_if_the_suggestions_were_new()
    monkeypatch.setattr(warming, "BEHIND", 0)  # as if a burst of refreshes queued ahead
    checks = len(site.host.calls_to(CHECKS))
    _refresh_as_neighbour(site, shared, key)
    assert len(site.host.calls_to(CHECKS)) == checks  # the view will ask for itself


def test_a_panel_read_through_the_api_counts_its_viewer_too(site: Site, shared: SharedAnswers) -> None:
    """Forge's Custom UI reads panels through the JSON API, where no iframe URL vouches for the item."""
    key = site.stored()
    response = site.get(f"/api/content/jira/{key}/reuse")
    assert response.status_code == 200 and response.get_json()["suggestions"]
    assert shared.viewers(site.tenant.tenant_id, ("jira", key)) == [VIEWER]
    _as_if_the_suggestions_were_new()
    assert warming.warm_viewers(shared.connection, site.tenant.tenant_id, _item_id(site, key)) == 1


def test_erasing_oneself_drops_ones_recent_views(site: Site, shared: SharedAnswers) -> None:
    key = site.stored()
    _view(site, key)
    _view(site, key, sub="someone-else")
    assert site.post("/api/me/erase", {"confirm": "ERASE"}).status_code == 200
    assert shared.viewers(site.tenant.tenant_id, ("jira", key)) == ["someone-else"]
