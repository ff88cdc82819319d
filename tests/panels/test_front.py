"""Cached views answered in front of Flask (`plugin.views.front`): exactly what Flask answers.

A repeat view with a Connect JWT (in the query, as an iframe URL carries it, or in the header)
is answered before Flask runs: same status, headers and body as the route's own answer, the
adoption events and the latency sample recorded as a route records them. Anything the layer
cannot vouch for (another viewer, a changed fact, a forged, expired or context token, another
query) is Flask's to answer, as before.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, request_started
from werkzeug.test import Client, TestResponse

from plugin.metrics import REQUEST_SECONDS
from plugin.models.social import Feedback
from plugin.services.panel_cache import EVENTS, FRAGMENTS
from plugin.views import front
from tests.conftest import build_app, chunked
from tests.panels.conftest import VIEWER, Site, install_wiki
from tests.panels.test_cached_views import JIRA_VIEWS, WIKI_VIEWS, View, _stored


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    FRAGMENTS.clear()


@pytest.fixture
def dispatched(site: Site) -> Iterator[list[str]]:
    """Paths of the requests Flask itself handled."""
    seen: list[str] = []

    def count(_sender: Flask, **_: Any) -> None:
        from flask import request
        seen.append(request.path)

    request_started.connect(count, site.app)
    yield seen
    request_started.disconnect(count, site.app)


def _by_flask(site: Site, path: str, headers: dict[str, str]) -> TestResponse:
    """The same request answered by Flask alone (the layer bypassed)."""
    layer = site.app.wsgi_app
    assert isinstance(layer, front.CachedViews)
    return Client(layer.wrapped, TestResponse).get(path, headers=headers)


def _headers(response: TestResponse) -> list[tuple[str, str]]:
    return [h for h in response.headers.items() if h[0] != "Date"]


def _in_query(site: Site, path: str, sub: str | None = VIEWER) -> str:
    """The path with its token in the query, as Jira writes an iframe URL."""
    return f"{path}&jwt={site.tenant.token('GET', path, sub=sub)}"


def _assert_front_answers_as_flask(site: Site, views: dict[str, View], key: str,
                                   dispatched: list[str]) -> None:
    for name, view in views.items():
        first = view(site, key)
        assert first.status_code == 200, name
        before = len(dispatched)
        again = view(site, key)
        assert len(dispatched) == before, f"{name}: Flask answered a repeat view"
        path = again.request.full_path.rstrip("?")
        headers = dict(again.request.headers)
        plain = _by_flask(site, path, {k: v for k, v in headers.items() if k == "Authorization"})
        assert again.status == plain.status == "200 OK", name
        assert _headers(again) == _headers(plain), name
        assert again.get_data() == plain.get_data(), name


def test_every_jira_iframe_view_is_answered_in_front_as_flask_answers_it(
        site: Site, dispatched: list[str]) -> None:
    key = site.keys[-1]
    _stored(site, key)
    iframes = {name: view for name, view in JIRA_VIEWS.items() if "API" not in name}
    _assert_front_answers_as_flask(site, iframes, key, dispatched)


def test_every_confluence_view_is_answered_in_front_as_flask_answers_it(
        site: Site, dispatched: list[str]) -> None:
    wiki = install_wiki(site)
    key = wiki.keys[0]
    _stored(wiki, key)
    _assert_front_answers_as_flask(wiki, WIKI_VIEWS, key, dispatched)


def test_a_token_in_the_query_is_answered_in_front_and_counted_as_a_view(
        site: Site, dispatched: list[str]) -> None:
    key = site.stored()
    path = f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ"
    first = site.client.get(_in_query(site, path))
    assert first.status_code == 200
    EVENTS.flush()
    views, flask_before = site.views("reuse"), len(dispatched)
    samples = _samples("jira_pages.issue_panel")
    again = site.client.get(_in_query(site, path))  # a new token, as each issue view brings
    assert again.get_data() == first.get_data()
    assert len(dispatched) == flask_before  # answered in front
    EVENTS.flush()
    assert site.views("reuse") == views + 1  # the adoption event of the view
    assert _samples("jira_pages.issue_panel") == samples + 1  # and its latency, under its route


def _samples(endpoint: str) -> float:
    child = REQUEST_SECONDS.labels("GET", endpoint, "200")
    return next(s.value for m in child.collect() for s in m.samples if s.name.endswith("_count"))


def test_what_the_layer_cannot_vouch_for_is_left_to_flask(
        site: Site, dispatched: list[str]) -> None:
    key = site.stored()
    path = f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ"
    assert site.client.get(_in_query(site, path)).status_code == 200
    expired = f"{path}&jwt={site.tenant.token('GET', path, sub=VIEWER, ttl=-100)}"
    wrong_qsh = f"{path}&jwt={site.tenant.token('GET', '/jira/panels/experts', sub=VIEWER)}"
    forged = path + "&jwt=" + site.tenant.token("GET", path, sub=VIEWER)[:-4] + "AAAA"
    for asked, status in ((expired, 401), (wrong_qsh, 401), (forged, 401),
                          (_in_query(site, path, sub="someone-else"), 200),
                          (_in_query(site, path + "&extra=1"), 200)):
        before = len(dispatched)
        assert site.client.get(asked).status_code == status
        assert len(dispatched) == before + 1, asked  # Flask answered (and refused or rendered)


OVER_LIMIT = b"x" * (1024 * 1024 + 1)
# A body with its length declared, and one in chunks (no length; granian passes no CONTENT_LENGTH).
BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "declared": lambda: {"data": OVER_LIMIT},
    "chunked": lambda: chunked(OVER_LIMIT),
}


@pytest.mark.parametrize("sent", BODIES)
def test_a_cached_view_asked_with_an_oversized_body_is_flasks_413(
        site: Site, dispatched: list[str], sent: str) -> None:
    key = site.stored()
    path = _in_query(site, f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ")
    assert site.client.get(path).status_code == 200  # now cached
    before = len(dispatched)
    assert site.client.get(path, **BODIES[sent]()).status_code == 413
    assert len(dispatched) == before + 1  # Flask answered, as without the layer


def test_a_changed_fact_is_rendered_by_flask(site: Site, dispatched: list[str]) -> None:
    key = site.stored()
    path = f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ"
    first = site.page(path)
    suggested = first.get_data(as_text=True)
    with site.db.session() as session:
        session.add(Feedback(tenant_id=site.tenant.tenant_id, source="jira", item_key=key,
                             account_id=VIEWER, target_item_id=1, verdict="helped"))
    before = len(dispatched)
    assert site.page(path).status_code == 200
    assert len(dispatched) == before + 1  # the viewer's verdicts changed: rendered again
    assert suggested  # (the first view rendered something to compare against)


def test_an_unknown_request_hook_keeps_the_layer_out(sqlite_url: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    app = build_app(sqlite_url)
    assert isinstance(app.wsgi_app, front.CachedViews)
    app.wsgi_app = app.wsgi_app.wrapped  # type: ignore[method-assign]
    app.before_request(lambda: None)
    with caplog.at_level(logging.WARNING, logger="plugin.views.front"):
        front.init_app(app)
    assert not isinstance(app.wsgi_app, front.CachedViews)
    assert "request hooks the front layer does not know" in caplog.text
    app.extensions["inflow.db"].dispose()
