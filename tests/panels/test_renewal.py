"""Cached views renewed before they expire: the host is asked again off the request, and what it
says now (a permission withdrawn) shows in the next view, which never waits for the host."""
from __future__ import annotations

import re
import time

import pytest

from plugin.services import panel_cache
from plugin.services.panel_cache import EVENTS, FRAGMENTS, Fragment
from plugin.views import renewal
from tests.panels.conftest import VIEWER, Site

CHECKS = "/rest/api/3/permissions/check"


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    FRAGMENTS.clear()


def _near_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make views cached a second ago count as near their end (60 s of life, 59 s ahead)."""
    monkeypatch.setattr(renewal, "AHEAD", 59.0)
    time.sleep(1.1)


def _shown(site: Site, key: str) -> list[str]:
    response = site.page(f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ")
    assert response.status_code == 200
    return re.findall(r'data-track="([^"]+)"', response.get_data(as_text=True))


def _checks(site: Site) -> int:
    return len(site.host.calls_to(CHECKS))


def test_a_view_far_from_expiry_is_served_as_it_is(site: Site) -> None:
    key = site.stored()
    shown = _shown(site, key)
    checks, hits = _checks(site), FRAGMENTS.hits
    assert _shown(site, key) == shown
    assert renewal.wait_idle()
    assert (FRAGMENTS.hits, _checks(site)) == (hits + 1, checks)


def test_a_view_near_expiry_is_renewed_off_the_request_and_counted_once(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    key = site.stored()
    shown = _shown(site, key)
    _near_expiry(monkeypatch)
    checks, hits, misses = _checks(site), FRAGMENTS.hits, FRAGMENTS.misses
    assert _shown(site, key) == shown  # served from the cache; the renewal runs behind it
    assert renewal.wait_idle()
    assert _checks(site) == checks + 1  # the renewal asked the host again
    assert (FRAGMENTS.hits, FRAGMENTS.misses) == (hits + 1, misses)
    EVENTS.flush()
    assert site.views("reuse") == 2  # the renewal is nobody's view


def test_what_the_host_says_at_renewal_shows_in_the_next_view(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    key = site.stored()
    shown = _shown(site, key)
    site.host.deny(VIEWER, shown[0])
    _near_expiry(monkeypatch)
    assert _shown(site, key) == shown  # the answer given 0 s ago still stands: from the cache
    assert renewal.wait_idle()
    checks = _checks(site)
    assert shown[0] not in _shown(site, key)  # the renewed view, without asking the host now
    assert _checks(site) <= checks + 1  # at most the next renewal, behind this view
    assert renewal.wait_idle()


def test_a_renewal_that_fails_keeps_nothing_new(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    key = site.stored()
    shown = _shown(site, key)
    _near_expiry(monkeypatch)
    site.host.inject(CHECKS, 400, times=1)
    checks = _checks(site)
    assert _shown(site, key) == shown
    assert renewal.wait_idle()
    assert _checks(site) == checks + 1  # the renewal asked, and the host refused
    assert _shown(site, key) == shown  # the old view until it expires (its answers are < 60 s old)
    assert renewal.wait_idle()


def _entry(site: Site, key: str, panel: str = "reuse") -> Fragment:
    """The cached view of `key`'s panel for the viewer."""
    asked = (f"/jira/panels/{panel}", f"issueKey={key}&projectKey=AMQ")
    found = [entry for k, entry in FRAGMENTS._data.items() if k[2:4] == asked and k[-1] == VIEWER]
    assert len(found) == 1
    return found[0]


def test_a_renewal_with_unchanged_answers_extends_the_view_without_rendering_it(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    key = site.stored()
    response = site.page(f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ")
    before = _entry(site, key)
    assert before.answers and all(before.answers.values())  # it showed items it asked about
    _near_expiry(monkeypatch)
    checks = _checks(site)
    assert _shown(site, key)
    assert renewal.wait_idle()
    after = _entry(site, key)
    assert _checks(site) == checks + 1  # one bulk check for every item it showed
    # Not rendered again: the same body, kept by the same render, living until the new answers end.
    assert (after.body, after.lasting, after.answers) == (before.body, before.lasting, before.answers)
    assert after.expires_at > before.expires_at + 0.5
    # And it is what the route answers with the cache off.
    site.app.config["INFLOW_PANEL_CACHE"] = "0"
    try:
        uncached = site.page(f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ")
    finally:
        del site.app.config["INFLOW_PANEL_CACHE"]
    assert uncached.get_data() == response.get_data() == after.body


def test_a_view_that_asked_no_permission_is_extended_without_rendering_it(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    key = site.stored()
    path = f"/jira/panels/contributors?issueKey={key}&projectKey=AMQ"
    response = site.page(path)
    before = _entry(site, key, "contributors")
    assert not before.answers  # the contributors panel shows people, not items to check
    _near_expiry(monkeypatch)
    calls = len(site.host.calls_to("/"))
    assert site.page(path).get_data() == response.get_data()
    assert renewal.wait_idle()
    after = _entry(site, key, "contributors")
    assert len(site.host.calls_to("/")) == calls  # nothing to ask the host
    assert (after.body, after.lasting) == (before.body, before.lasting)  # the same render
    assert after.expires_at > before.expires_at + 0.5


def test_a_view_kept_for_its_longest_is_rendered_again_not_extended(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(panel_cache, "RENDER_EVERY", 30.0)  # within the renewal's 59 s horizon
    key = site.stored()
    _shown(site, key)
    before = _entry(site, key)
    _near_expiry(monkeypatch)
    _shown(site, key)
    assert renewal.wait_idle()
    assert _entry(site, key).lasting > before.lasting  # a new render, with a new bound
