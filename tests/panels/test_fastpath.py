"""The WSGI fast path for cached reuse panels answers exactly as the Flask route does."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from werkzeug.test import Client, TestResponse

from plugin.fastpath import ReusePanelFastPath, install
from plugin.metrics import REQUEST_SECONDS
from plugin.models.social import PanelEvent
from plugin.services.panel_cache import EVENTS, FRAGMENTS
from tests.conftest import build_app
from tests.jwt_helpers import host_token
from tests.panels.conftest import VIEWER, Site
from tests.panels.test_fragment_cache import _stored  # stored suggestions for an issue

PANEL = "/jira/panels/reuse"


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    FRAGMENTS.clear()


class Paths:
    """The same requests sent through the fast path and through the Flask app alone."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.fast: ReusePanelFastPath = site.app.wsgi_app  # type: ignore[assignment]
        self.flask_calls = 0
        inner = self.fast.wrapped

        def counted(environ: dict[str, Any], start_response: Any) -> Any:
            self.flask_calls += 1
            return inner(environ, start_response)

        self.fast.wrapped = counted
        self.plain = Client(inner, TestResponse)

    def url(self, key: str, sub: str | None = VIEWER, more: str = "", **token: Any) -> str:
        """An iframe URL as Jira renders it: the qsh JWT in the `jwt` query parameter."""
        path = f"{PANEL}?{urlencode({'issueKey': key, 'projectKey': 'AMQ'})}{more}"
        jwt = host_token(self.site.tenant.client_key, token.pop("secret", self.site.tenant.secret),
                         "GET", path, sub=sub, **token)
        return f"{path}&jwt={jwt}"

    def both(self, url: str, **kw: Any) -> tuple[TestResponse, TestResponse]:
        """The fast path's answer, then plain Flask's to the same request."""
        return self.site.client.get(url, **kw), self.plain.get(url, **kw)


@pytest.fixture
def paths(site: Site) -> Iterator[Paths]:
    yield Paths(site)


def _same(fast: TestResponse, plain: TestResponse) -> None:
    assert fast.status == plain.status
    assert [h for h in fast.headers.items() if h[0] != "Date"] == \
        [h for h in plain.headers.items() if h[0] != "Date"]
    assert fast.get_data() == plain.get_data()


def _panel_samples() -> float:
    for metric in REQUEST_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels == {
                    "method": "GET", "endpoint": "jira_pages.issue_panel", "status": "200"}:
                return sample.value
    return 0.0


def _views(site: Site) -> int:
    EVENTS.flush()
    with site.db.session() as session:
        return session.scalar(select(func.count()).select_from(PanelEvent).where(
            PanelEvent.kind == "viewed", PanelEvent.panel == "reuse"))


def test_a_hit_is_served_without_flask_and_answers_byte_for_byte_the_same(paths: Paths) -> None:
    key = _stored(paths.site)
    url = paths.url(key)
    first = paths.site.client.get(url)  # a miss: Flask renders and caches the panel
    assert first.status_code == 200 and paths.flask_calls == 1
    samples, views, hits = _panel_samples(), _views(paths.site), FRAGMENTS.hits
    fast, plain = paths.both(url)
    assert paths.flask_calls == 1  # the fast path answered the repeat
    assert FRAGMENTS.hits == hits + 2
    _same(fast, plain)
    assert fast.get_data() == first.get_data()
    assert fast.headers["Cache-Control"] == "no-store"
    policy = fast.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' " + paths.site.tenant.base_url in policy
    assert _panel_samples() == samples + 2  # both timed under the route's own label
    assert _views(paths.site) == views + 2  # and both counted for adoption


def test_a_token_in_the_authorization_header_and_other_viewers(paths: Paths) -> None:
    key = _stored(paths.site)
    path = f"{PANEL}?issueKey={key}&projectKey=AMQ"
    for sub in (VIEWER, "chirino", None):
        headers = paths.site.tenant.headers("GET", path, sub=sub)
        paths.site.client.get(path, headers=headers)
        calls = paths.flask_calls
        fast, plain = paths.both(path, headers=headers)
        assert paths.flask_calls == calls and fast.status_code == 200
        _same(fast, plain)


@pytest.mark.parametrize("case", ["forged", "expired", "unknown tenant", "other issue's qsh",
                                  "no token", "context token"])
def test_a_rejected_token_is_refused_by_flask_as_before(paths: Paths, case: str) -> None:
    key = _stored(paths.site)
    paths.site.client.get(paths.url(key))  # cached for this viewer
    if case == "forged":
        url = paths.url(key, secret="f" * 64)
    elif case == "expired":
        url = paths.url(key, ttl=-3600)
    elif case == "unknown tenant":
        jwt = host_token("someone-else", paths.site.tenant.secret, "GET",
                         f"{PANEL}?issueKey={key}&projectKey=AMQ", sub=VIEWER)
        url = f"{PANEL}?issueKey={key}&projectKey=AMQ&jwt={jwt}"
    elif case == "other issue's qsh":
        url = paths.url(key).replace(f"issueKey={key}", f"issueKey={paths.site.keys[0]}")
    elif case == "no token":
        url = f"{PANEL}?issueKey={key}&projectKey=AMQ"
    else:
        jwt = host_token(paths.site.tenant.client_key, paths.site.tenant.secret, "GET", "/",
                         sub=VIEWER, context=True)
        url = f"{PANEL}?issueKey={key}&projectKey=AMQ&jwt={jwt}"
    calls = paths.flask_calls
    fast, plain = paths.both(url)
    assert paths.flask_calls == calls + 1  # not answered by the fast path
    assert fast.status_code == 401
    _same(fast, plain)


def test_a_changed_item_is_rendered_again(paths: Paths) -> None:
    key = _stored(paths.site)
    url = paths.url(key)
    paths.site.client.get(url)
    with paths.site.db.engine.begin() as conn:  # an edit: every change bumps the item's sequence
        conn.exec_driver_sql("UPDATE items SET index_seq = index_seq + 1 WHERE key = ?", (key,))
    misses, calls = FRAGMENTS.misses, paths.flask_calls
    assert paths.site.client.get(url).status_code == 200
    assert (paths.flask_calls, FRAGMENTS.misses) == (calls + 1, misses + 1)  # Flask re-rendered
    fast, plain = paths.both(url)  # and the fresh entry is served from the fast path again
    assert paths.flask_calls == calls + 1
    _same(fast, plain)


def test_the_viewers_verdict_shows_at_once_through_the_fast_path(paths: Paths) -> None:
    key = _stored(paths.site)
    url = paths.url(key)
    html = paths.site.client.get(url).get_data(as_text=True)
    assert 'aria-pressed="true"' not in html
    target = int(html.split('data-group="fb-', 1)[1].split('"', 1)[0])
    body = {"source": "jira", "key": key, "target_item_id": target, "verdict": "helped"}
    assert paths.site.post("/api/feedback", body).status_code == 200
    assert 'aria-pressed="true"' in paths.site.client.get(url).get_data(as_text=True)


@pytest.mark.parametrize("variant", ["head", "trailing slash", "no issue", "repeated issue key",
                                     "invalid escape", "cache off"])
def test_anything_else_goes_to_flask_untouched(paths: Paths, variant: str) -> None:
    key = _stored(paths.site)
    paths.site.client.get(paths.url(key))
    method, url = "GET", paths.url(key)
    if variant == "head":
        method = "HEAD"
    elif variant == "trailing slash":
        url = url.replace(PANEL, PANEL + "/")
    elif variant == "no issue":
        url = paths.url("")
    elif variant == "repeated issue key":
        url = paths.url(key, more=f"&issueKey={paths.site.keys[0]}")
    elif variant == "invalid escape":
        url = paths.url(key, more="&x=%FF")
    else:
        paths.site.app.config["INFLOW_PANEL_CACHE"] = "0"
    calls = paths.flask_calls
    fast = paths.site.client.open(url, method=method)
    plain = paths.plain.open(url, method=method)
    if variant == "repeated issue key":  # the first value counts, as in request.args
        assert paths.flask_calls == calls and fast.status_code == 200
    else:
        assert paths.flask_calls == calls + 1
    _same(fast, plain)


def test_other_routes_are_untouched(paths: Paths) -> None:
    key = _stored(paths.site)
    for panel in ("experts", "contributors"):
        path = f"/jira/panels/{panel}?issueKey={key}&projectKey=AMQ"
        calls = paths.flask_calls
        response = paths.site.page(path)
        assert response.status_code == 200 and paths.flask_calls == calls + 1
    assert paths.site.client.get("/healthz").status_code in (200, 503)


def test_a_busy_database_falls_back_to_flask(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    import plugin.fastpath

    key = _stored(paths.site)
    url = paths.url(key)
    paths.site.client.get(url)

    def locked(*_: Any) -> None:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(plugin.fastpath, "reuse_hit", locked)
    calls = paths.flask_calls
    started = time.monotonic()
    assert paths.site.client.get(url).status_code == 200  # Flask's own read succeeded
    assert paths.flask_calls == calls + 1 and time.monotonic() - started < 5


def test_an_unknown_request_hook_keeps_the_fast_path_off(sqlite_url: str) -> None:
    app = build_app(sqlite_url)
    assert isinstance(app.wsgi_app, ReusePanelFastPath)
    app.wsgi_app = app.wsgi_app.wrapped  # type: ignore[attr-defined]
    app.after_request(lambda response: response)  # could change what the route answers
    install(app)
    assert not isinstance(app.wsgi_app, ReusePanelFastPath)
    app.extensions["inflow.db"].dispose()


def test_the_fast_path_can_be_turned_off(sqlite_url: str) -> None:
    app = build_app(sqlite_url, INFLOW_FAST_PATH="0")
    assert not isinstance(app.wsgi_app, ReusePanelFastPath)
    app.extensions["inflow.db"].dispose()
