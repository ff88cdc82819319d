"""Every cached view answers exactly as the uncached route: same status, headers and body.

Each view (the three Jira panels, their JSON API, the Confluence byline and its title, every
macro) is opened, opened again (a hit), then something it shows changes; after each change the
cached route must answer byte for byte as the route does with the cache off.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from connect.db import utcnow
from plugin.content.normalize import jira_issue_to_doc
from plugin.matching.precompute import refresh_suggestions
from plugin.matching.store import delete_item, get_item, upsert_item
from plugin.models.content import Person, StoredSuggestion
from plugin.models.social import Feedback, Kudos
from plugin.services import questions
from plugin.services.panel_cache import EVENTS, FRAGMENTS
from plugin.services.people import PROFILES
from plugin.services.permissions import CACHE
from plugin.services.settings import save_project_settings, set_preference
from tests.panels.conftest import VIEWER, Site, install_wiki

View = Callable[[Site, str], TestResponse]
OTHER = "chirino"
SPACE = "TSC"


def _api(panel: str) -> View:
    return lambda site, key: site.get(f"/api/content/{site.tenant.product}/{key}/{panel}")


def _jira_panel(panel: str) -> View:
    return lambda site, key: site.page(f"/jira/panels/{panel}?issueKey={key}&projectKey=AMQ")


def _macro(macro: str, more: str = "") -> View:
    return lambda site, key: site.page(
        f"/confluence/macros/{macro}?pageId={key}&spaceKey={SPACE}{more}")


PANELS = ("reuse", "experts", "contributors")
JIRA_VIEWS: dict[str, View] = {
    **{f"{panel} panel": _jira_panel(panel) for panel in PANELS},
    **{f"{panel} API": _api(panel) for panel in PANELS},
}
WIKI_VIEWS: dict[str, View] = {
    "byline": lambda site, key: site.page(f"/confluence/byline?pageId={key}"),
    "byline title": lambda site, key: site.page(f"/confluence/byline/context?pageId={key}"),
    **{f"{macro} macro": _macro(macro) for macro in ("experts", "related", "contributors")},
    "recognition macro": _macro("recognition", "&scope=site&period=month"),
    "board macro": _macro("board", "&scope=space&period=week"),
}


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    FRAGMENTS.clear()


def _uncached(site: Site, view: View, key: str) -> TestResponse:
    site.app.config["INFLOW_PANEL_CACHE"] = "0"
    try:
        return view(site, key)
    finally:
        del site.app.config["INFLOW_PANEL_CACHE"]


def _headers(response: TestResponse) -> list[tuple[str, str]]:
    return [h for h in response.headers.items() if h[0] != "Date"]


def assert_as_uncached(site: Site, views: dict[str, View], key: str) -> None:
    """Each view through the cache answers as the route with the cache off."""
    for name, view in views.items():
        cached, plain = view(site, key), _uncached(site, view, key)
        assert cached.status == plain.status == "200 OK", name
        assert _headers(cached) == _headers(plain), name
        assert cached.get_data(as_text=True) == plain.get_data(as_text=True), name


def warm(site: Site, views: dict[str, View], key: str) -> None:
    """Open every view twice: the second time each is answered from the cache."""
    for name, view in views.items():
        assert view(site, key).status_code == 200, name
        hits = FRAGMENTS.hits
        assert view(site, key).status_code == 200, name
        assert FRAGMENTS.hits == hits + 1, f"{name} was not served from the cache"


def _stored(site: Site, key: str) -> int:
    with site.db.session() as session:
        item = get_item(session, site.tenant.tenant_id, site.tenant.product, key)
        refresh_suggestions(session, site.tenant.tenant_id, item.id)
        return item.id


def _data(site: Site, key: str, panel: str) -> dict[str, Any]:
    return _uncached(site, _api(panel), key).get_json()


def _shown_expert(site: Site, key: str) -> str:
    return _data(site, key, "experts")["experts"][0]["account_id"]


# ---------- Jira ----------


@pytest.fixture
def jira(site: Site) -> tuple[Site, str]:
    key = site.keys[-1]
    _stored(site, key)
    warm(site, JIRA_VIEWS, key)
    return site, key


def _reissue(site: Site, key: str, issue: dict[str, Any], **fields: Any) -> None:
    issue = {**issue, "fields": {**issue["fields"], **fields}}
    with site.db.session() as session:
        upsert_item(session, site.tenant.tenant_id, jira_issue_to_doc(issue, site.tenant.base_url))


def _item_edited(site: Site, key: str, issues: list[dict[str, Any]]) -> None:
    issue = next(i for i in issues if i["key"] == key)
    comments = issue["fields"]["comment"]["comments"]
    newcomer = {"id": "99999", "author": {"accountId": "newcomer", "displayName": "Newcomer"},
                "body": "Fixed by restarting the broker", "created": comments[-1]["created"]
                if comments else issue["fields"]["created"]}
    _reissue(site, key, issue, summary="Broker drops messages after restart",
             comment={"comments": [*comments, newcomer], "total": len(comments) + 1})


def _suggestions_refreshed(site: Site, key: str) -> None:
    with site.db.session() as session:
        for row in session.scalars(select(StoredSuggestion).where(
                StoredSuggestion.tenant_id == site.tenant.tenant_id)):
            row.payload, row.computed_at = row.payload[1:], utcnow()


def _settings_changed(site: Site, project: str) -> None:
    with site.db.session() as session:
        save_project_settings(session, site.tenant.tenant_id, project, {
            "purpose": "Find who knows before you ask", "privacy": {
                "show_evidence": False, "public_kudos_messages": False}}, "admin")


def _renamed(site: Site, accounts: list[str]) -> None:
    with site.db.session() as session:
        session.execute(update(Person).where(Person.tenant_id == site.tenant.tenant_id,
                                             Person.account_id.in_(accounts))
                        .values(display_name="Someone Renamed"))


def _thanked(site: Site, key: str) -> None:
    people = _data(site, key, "contributors")["contributors"]
    receiver = next(p["account_id"] for p in people if p["account_id"] != VIEWER)
    body = {"source": site.tenant.product, "key": key, "to_account_id": receiver,
            "message": "Thanks for the fix"}
    assert site.post("/api/kudos", body).status_code == 201


def _authored_by_viewer(site: Site) -> int:
    from plugin.models.content import Contribution
    with site.db.session() as session:
        return session.scalar(select(Contribution.item_id).where(
            Contribution.tenant_id == site.tenant.tenant_id, Contribution.account_id == VIEWER,
            Contribution.role.in_(("assignee", "resolver", "creator"))).limit(1))


JIRA_CHANGES: dict[str, Callable[[Site, str, list[dict[str, Any]]], None]] = {
    "nothing": lambda site, key, issues: None,
    "the item is edited and commented by someone new": _item_edited,
    "its stored suggestions are refreshed": lambda site, key, _: _suggestions_refreshed(site, key),
    "the project's settings change": lambda site, key, _: _settings_changed(site, "AMQ"),
    "the viewer gives a verdict": lambda site, key, _: site.post("/api/feedback", {
        "source": "jira", "key": key, "verdict": "helped",
        "target_item_id": _data(site, key, "reuse")["suggestions"][0]["item_id"]}),
    "someone is thanked": lambda site, key, _: _thanked(site, key),
    "an expert opts out": lambda site, key, _: _opt_out(site, _shown_expert(site, key)),
    "an expert is deactivated": lambda site, key, issues: _deactivated(site, key, issues),
    "people are renamed": lambda site, key, _: _renamed(site, [
        _shown_expert(site, key), *[p["account_id"] for p in
                                    _data(site, key, "contributors")["contributors"]]]),
    "a suggested item is deleted": lambda site, key, _: _delete(
        site, _data(site, key, "reuse")["suggestions"][0]["key"]),
    "an expert's evidence is deleted": lambda site, key, _: _delete(
        site, _data(site, key, "experts")["experts"][0]["evidence"][0]["key"]),
    "a permission is withdrawn": lambda site, key, _: _deny(
        site, _data(site, key, "reuse")["suggestions"][0]["key"]),
    "someone finds the viewer's work helped": lambda site, key, _: _helped_by_other(site, key),
    "names from the host are forgotten": lambda site, key, _: PROFILES.clear(),
}


def _opt_out(site: Site, account: str) -> None:
    with site.db.session() as session:
        set_preference(session, site.tenant.tenant_id, account, True, None)


def _deactivated(site: Site, key: str, issues: list[dict[str, Any]]) -> None:
    """Another issue of theirs is read again, and Jira shows the shown expert as deactivated."""
    expert = _shown_expert(site, key)
    other = next(i for i in issues if i["key"] != key)
    _reissue(site, other["key"], other, assignee={"accountId": expert, "active": False})
    assert _shown_expert(site, key) != expert


def _delete(site: Site, key: str) -> None:
    with site.db.session() as session:
        assert delete_item(session, site.tenant.tenant_id, site.tenant.product, key)


def _deny(site: Site, key: str) -> None:
    site.host.deny(VIEWER, key)
    CACHE.clear()  # as an answer's 60 s run out


def _helped_by_other(site: Site, key: str) -> None:
    target = _authored_by_viewer(site)
    assert target is not None
    body = {"source": "jira", "key": key, "target_item_id": target, "verdict": "helped"}
    assert site.post("/api/feedback", body, sub=OTHER).status_code == 200


UNSEEN = ("nothing", "names from the host are forgotten")  # the host's names are the stored ones


def _shown(site: Site, views: dict[str, View], key: str) -> dict[str, bytes]:
    return {name: _uncached(site, view, key).get_data() for name, view in views.items()}


@pytest.mark.parametrize("change", JIRA_CHANGES)
def test_a_jira_view_after_a_change_answers_as_the_uncached_route(
        jira: tuple[Site, str], activemq_issues: list[dict[str, Any]], change: str) -> None:
    site, key = jira
    before = _shown(site, JIRA_VIEWS, key)
    JIRA_CHANGES[change](site, key, activemq_issues)
    assert_as_uncached(site, JIRA_VIEWS, key)
    assert (_shown(site, JIRA_VIEWS, key) != before) is (change not in UNSEEN)  # a real change


def test_a_question_asked_and_answered_shows_at_once(jira: tuple[Site, str]) -> None:
    site, key = jira
    expert = _shown_expert(site, key)
    body = {"source": "jira", "key": key, "expert_account_id": expert, "text": "Any idea why?"}
    assert site.post("/api/questions", body).status_code == 201
    assert_as_uncached(site, JIRA_VIEWS, key)
    with site.db.session() as session:
        assert questions.on_comment(session, site.tenant.tenant_id, "jira", key, expert, utcnow())
    assert_as_uncached(site, JIRA_VIEWS, key)


def test_the_impact_window_moves_with_the_clock(jira: tuple[Site, str]) -> None:
    site, key = jira
    with site.db.session() as session:  # thanks received just inside the 30 days, for 1.5 s more
        session.add(Kudos(tenant_id=site.tenant.tenant_id, source="jira", item_key=site.keys[0],
                          from_account_id=OTHER, to_account_id=VIEWER, kind="thanks",
                          created_at=utcnow() - timedelta(days=30, seconds=-1.5)))
    assert_as_uncached(site, JIRA_VIEWS, key)
    counted = _data(site, key, "contributors")["impact"]["kudos_received"]
    time.sleep(2)
    assert _data(site, key, "contributors")["impact"]["kudos_received"] == counted - 1
    assert_as_uncached(site, JIRA_VIEWS, key)


def test_an_experts_pause_ends_with_the_clock(jira: tuple[Site, str]) -> None:
    site, key = jira
    expert = _shown_expert(site, key)
    with site.db.session() as session:
        set_preference(session, site.tenant.tenant_id, expert, False,
                       utcnow() + timedelta(seconds=1.5))
    assert_as_uncached(site, JIRA_VIEWS, key)
    assert expert not in [e["account_id"] for e in _data(site, key, "experts")["experts"]]
    time.sleep(2)
    assert expert in [e["account_id"] for e in _data(site, key, "experts")["experts"]]
    assert_as_uncached(site, JIRA_VIEWS, key)


def test_a_hit_is_counted_for_adoption_like_a_render(jira: tuple[Site, str]) -> None:
    from sqlalchemy import func

    from plugin.models.social import PanelEvent

    site, key = jira

    def counted() -> dict[tuple[str, str], int]:
        EVENTS.flush()
        with site.db.session() as session:
            return {(panel, kind): n for panel, kind, n in session.execute(
                select(PanelEvent.panel, PanelEvent.kind, func.count())
                .group_by(PanelEvent.panel, PanelEvent.kind)).all()}

    before = counted()
    hits = FRAGMENTS.hits
    for view in JIRA_VIEWS.values():
        view(site, key)
    assert FRAGMENTS.hits == hits + len(JIRA_VIEWS)
    after = counted()
    for panel in ("reuse", "experts", "contributors"):
        assert after[(panel, "viewed")] == before[(panel, "viewed")] + 2  # panel and its API
        assert after[(panel, "shown")] == before[(panel, "shown")] + 2


def test_a_render_that_ranked_live_is_not_kept(site: Site) -> None:
    key = site.keys[-2]  # no stored suggestions: ranked on the request, from the whole index
    for view in JIRA_VIEWS.values():
        view(site, key)
        hits = FRAGMENTS.hits
        view(site, key)
        assert FRAGMENTS.hits == hits or view is JIRA_VIEWS["contributors panel"] \
            or view is JIRA_VIEWS["contributors API"]  # those rank nothing


def test_the_cache_can_be_turned_off(jira: tuple[Site, str]) -> None:
    site, key = jira
    site.app.config["INFLOW_PANEL_CACHE"] = "0"
    hits, misses = FRAGMENTS.hits, FRAGMENTS.misses
    for view in JIRA_VIEWS.values():
        assert view(site, key).status_code == 200
    assert (FRAGMENTS.hits, FRAGMENTS.misses) == (hits, misses)


def test_a_rejected_token_is_refused_as_before(jira: tuple[Site, str]) -> None:
    site, key = jira
    path = f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ"
    forged = site.client.get(path, headers=site.tenant.headers("GET", path, sub=VIEWER) | {
        "Authorization": "JWT " + "x" * 40})
    unsigned = site.client.get(path)
    other_qsh = site.client.get(path, headers=site.tenant.headers(
        "GET", path.replace(key, site.keys[0]), sub=VIEWER))
    assert forged.status_code == unsigned.status_code == other_qsh.status_code == 401


# ---------- Confluence ----------


@pytest.fixture
def confluence(site: Site) -> tuple[Site, str]:
    install_wiki(site)
    key = next(k for k in site.keys if _has_suggestions(site, k))
    with site.db.session() as session:  # someone thanked on the page, for the boards
        session.add(Kudos(tenant_id=site.tenant.tenant_id, source="confluence", item_key=key,
                          space=SPACE, from_account_id=OTHER, to_account_id=VIEWER,
                          kind="thanks", created_at=utcnow() - timedelta(days=1)))
    warm(site, WIKI_VIEWS, key)
    return site, key


def _has_suggestions(site: Site, key: str) -> bool:
    _stored(site, key)
    data = _data(site, key, "experts")
    return bool(data["experts"]) and bool(_data(site, key, "reuse")["suggestions"])


def _page_edited(site: Site, key: str) -> None:
    from plugin.content.normalize import confluence_page_to_doc
    from sandbox.site import data

    page = next(p for p in data.confluence_pages() if str(p["id"]) == key)
    page = {**page, "title": "Runbook, rewritten",
            "version": {**page["version"], "authorId": "newcomer"}}
    with site.db.session() as session:
        upsert_item(session, site.tenant.tenant_id,
                    confluence_page_to_doc(page, site.tenant.base_url, space_key=SPACE))


WIKI_CHANGES: dict[str, Callable[[Site, str], None]] = {
    "nothing": lambda site, key: None,
    "the page is edited by someone new": _page_edited,
    "its stored suggestions are refreshed": _suggestions_refreshed,
    "the space's settings change": lambda site, key: _settings_changed(site, SPACE),
    "someone is thanked": _thanked,
    "an expert opts out": lambda site, key: _opt_out(site, _shown_expert(site, key)),
    "people are renamed": lambda site, key: _renamed(site, [
        _shown_expert(site, key), VIEWER, *[p["account_id"] for p in
                                            _data(site, key, "contributors")["contributors"]]]),
    "a related page is deleted": lambda site, key: _delete(
        site, next(s["key"] for s in _data(site, key, "reuse")["suggestions"]
                   if s["source"] == "confluence")),  # issues of the site's Jira show here too
    "a permission is withdrawn": lambda site, key: _deny(
        site, _data(site, key, "reuse")["suggestions"][0]["key"]),
    "a question is asked": lambda site, key: _asked(site, key),
}


def _asked(site: Site, key: str) -> None:
    body = {"source": "confluence", "key": key, "expert_account_id": _shown_expert(site, key),
            "text": "Is this still how we do it?"}
    assert site.post("/api/questions", body).status_code == 201


@pytest.mark.parametrize("change", WIKI_CHANGES)
def test_a_confluence_view_after_a_change_answers_as_the_uncached_route(
        confluence: tuple[Site, str], change: str) -> None:
    site, key = confluence
    before = _shown(site, WIKI_VIEWS, key)
    WIKI_CHANGES[change](site, key)
    assert_as_uncached(site, WIKI_VIEWS, key)
    assert (_shown(site, WIKI_VIEWS, key) != before) is (change not in UNSEEN)


def test_a_kudos_leaving_the_boards_window_shows(confluence: tuple[Site, str]) -> None:
    site, key = confluence
    with site.db.session() as session:  # inside the week for 1.5 s more
        session.add(Kudos(tenant_id=site.tenant.tenant_id, source="confluence", item_key=key,
                          space=SPACE, from_account_id=VIEWER, to_account_id=OTHER,
                          kind="thanks", created_at=utcnow() - timedelta(days=7, seconds=-1.5)))
    assert_as_uncached(site, WIKI_VIEWS, key)
    board = WIKI_VIEWS["board macro"]
    shown = board(site, key).get_data(as_text=True)
    time.sleep(2)
    assert board(site, key).get_data(as_text=True) != shown
    assert_as_uncached(site, WIKI_VIEWS, key)


def test_a_macro_ranked_on_a_topic_is_not_kept(confluence: tuple[Site, str]) -> None:
    site, key = confluence
    path = f"/confluence/macros/experts?pageId={key}&spaceKey={SPACE}&topic=consensus"
    site.page(path)
    hits = FRAGMENTS.hits
    site.page(path)
    assert FRAGMENTS.hits == hits


def test_feedback_rows_are_not_shared_between_viewers(jira: tuple[Site, str]) -> None:
    site, key = jira
    target = _data(site, key, "reuse")["suggestions"][0]["item_id"]
    body = {"source": "jira", "key": key, "target_item_id": target, "verdict": "helped"}
    assert site.post("/api/feedback", body, sub=OTHER).status_code == 200
    with site.db.session() as session:
        assert session.scalar(select(Feedback.account_id)) == OTHER
    assert 'aria-pressed="true"' not in JIRA_VIEWS["reuse panel"](site, key).get_data(as_text=True)
    assert_as_uncached(site, JIRA_VIEWS, key)
