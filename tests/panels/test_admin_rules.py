"""Project admin rules and dashboard: who may be suggested, and the adoption figures."""
from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest

from connect.db import utcnow
from plugin.matching.store import remember_people
from plugin.models.social import Kudos
from plugin.services.panel_cache import EVENTS
from plugin.services.settings import PEOPLE_RULES, save_project_settings
from tests.conftest import install_tenant
from tests.panels import test_cross_product
from tests.panels.conftest import Site
from tests.panels.test_cached_views import JIRA_VIEWS, assert_as_uncached, warm
from tests.pipeline.conftest import v2_issue

ADMIN = "chirino"
SETTINGS = "/api/admin/projects/AMQ/settings"
ADMIN_PAGE = "/jira/admin?projectKey=AMQ"
PEOPLE = "/api/admin/projects/AMQ/people"

both = test_cross_product.both  # the fixture: the fake site's Jira and Confluence


@pytest.fixture(autouse=True)
def admin(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")


HOSTILE = '<img src=x onerror="alert(1)"> Eve & Co'  # a display name as a hostile site may hold


def _shown(html: str, field: str) -> str:
    """What the admin page's text field shows, as a browser reads the escaped attribute."""
    return unescape(re.search(rf'name="{field}" data-type="list" value="([^"]*)"', html).group(1))


def _experts(site: Site, key: str) -> list[str]:
    data = site.get(f"/api/content/jira/{key}/experts").get_json()
    return [expert["account_id"] for expert in data["experts"]]


def _save(site: Site, **rules: list[str]) -> None:
    assert site.post(SETTINGS, rules, sub=ADMIN).status_code == 200


def _opt_out(site: Site, person: str) -> None:
    body = {"opted_out": True, "pause_days": None, "weekly_digest": None}
    assert site.post("/api/me/preferences", body, sub=person).status_code == 200


def test_also_these_people_are_allowed_besides_everyone_else(site: Site) -> None:
    key = site.keys[-1]
    first, second, *rest = _experts(site, key)
    _opt_out(site, second)
    # Listed, but their own choice and "never these people" still hold.
    _save(site, include_people=["bguan", second, first], exclude_people=[first])
    assert _experts(site, key)[:len(rest)] == rest
    assert first not in _experts(site, key) and second not in _experts(site, key)


def test_with_only_these_groups_the_people_listed_are_allowed_even_in_a_never_group(
        site: Site) -> None:
    key = site.stored()
    warm(site, JIRA_VIEWS, key)  # the panels kept while the rules change
    first, second, third = _experts(site, key)[:3]
    site.host.add_to_group(first, "broker-devs")
    site.host.add_to_group(second, "contractors")
    _save(site, include_groups=["broker-devs"], exclude_groups=["contractors"],
          include_people=[second])
    assert _experts(site, key) == [first, second]  # third is in neither: left out
    assert_as_uncached(site, JIRA_VIEWS, key)


def test_people_are_typed_by_name_or_account_id_and_stored_as_account_ids(site: Site) -> None:
    key = site.keys[-1]
    first = site.get(f"/api/content/jira/{key}/experts").get_json()["experts"][0]
    typed = [first["display_name"].upper(), "Gary Tully", "ANDREAS  ARRGÅRD", "jstrachan", "gtully"]
    saved = site.post(SETTINGS, {"exclude_people": typed, "include_people": [" rob davies "]}, sub=ADMIN)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["exclude_people"] == [first["account_id"], "gtully", "aarrgard", "jstrachan"]
    assert saved.get_json()["include_people"] == ["rajdavies"]
    assert first["account_id"] not in _experts(site, key)  # the rule now holds
    html = site.page(ADMIN_PAGE, sub=ADMIN).get_data(as_text=True)
    assert f'value="{first["display_name"]}, Gary Tully, Andreas Arrgård, james strachan"' in html
    assert 'value="Rob Davies"' in html and "Never these people (names or account ids)" in html


def test_people_the_site_does_not_know_or_cannot_tell_apart_are_refused(site: Site) -> None:
    _save(site, exclude_people=["gtully"])
    response = site.post(SETTINGS, {"exclude_people": ["not-a-real-person", "Gary Tully"],
                                    "include_people": ["Etienne Araya"]}, sub=ADMIN)
    assert response.status_code == 422
    assert response.get_json() == {"error": "invalid", "message": "Some fields are not valid.", "errors": {
        "exclude_people": ["This site has no person named 'not-a-real-person' (display name or account id)."],
        "include_people": ["2 people on this site are named 'Etienne Araya'; "
                           "enter the account id of the one you mean (earaya, eveyeti)."]}}
    settings = site.get(SETTINGS, sub=ADMIN).get_json()
    assert (settings["exclude_people"], settings["include_people"]) == (["gtully"], [])  # kept


def test_people_saved_before_the_check_still_show_and_save(site: Site) -> None:
    with site.db.session() as session:  # as the API stored them before it checked people
        save_project_settings(session, site.tenant.tenant_id, "AMQ",
                              {"exclude_people": ["not-a-real-person", "Gary Tully", "earaya"]}, "admin")
    page = site.page(ADMIN_PAGE, sub=ADMIN)
    assert page.status_code == 200
    # earaya by id: "Etienne Araya" names two people, so typing it back would be refused.
    assert 'value="not-a-real-person, Gary Tully, earaya"' in page.get_data(as_text=True)
    resaved = site.post(SETTINGS, {"exclude_people": ["not-a-real-person", "Gary Tully", "earaya"]}, sub=ADMIN)
    assert resaved.get_json()["exclude_people"] == ["not-a-real-person", "gtully", "earaya"]
    added = site.post(SETTINGS, {"exclude_people": ["not-a-real-person", "nobody"]}, sub=ADMIN)
    assert added.status_code == 422
    assert added.get_json()["errors"] == {
        "exclude_people": ["This site has no person named 'nobody' (display name or account id)."]}


def test_a_name_with_a_comma_is_shown_as_its_account_id(site: Site) -> None:
    with site.db.session() as session:
        remember_people(session, site.tenant.tenant_id, [("jdoe", "Doe, Jane")])
    _save(site, exclude_people=["doe, jane", "gtully"])  # one entry, as the API takes lists
    # The page splits what is typed at commas: "Doe, Jane" would come back as two entries.
    assert 'value="jdoe, Gary Tully"' in site.page(ADMIN_PAGE, sub=ADMIN).get_data(as_text=True)


def test_people_of_the_sites_confluence_count_and_of_other_sites_do_not(both: tuple) -> None:
    site, jira, wiki, _ = both
    elsewhere = install_tenant(site.db, "jira", base_url="https://elsewhere.atlassian.net")
    with site.db.session() as session:
        remember_people(session, wiki.tenant_id, [("wiki-only", "Wanda Wiki")])
        remember_people(session, elsewhere.tenant_id, [("elsewhere", "Ellis Where")])

    def save(people: list[str]) -> Any:
        return site.client.post(SETTINGS, json={"exclude_people": people},
                                headers=jira.context_headers(sub=ADMIN))

    assert save(["wanda wiki"]).get_json()["exclude_people"] == ["wiki-only"]
    refused = save(["Ellis Where", "elsewhere"])
    assert refused.status_code == 422 and len(refused.get_json()["errors"]["exclude_people"]) == 2
    with site.db.session() as session:  # stored before the check: shown, never named from elsewhere
        save_project_settings(session, jira.tenant_id, "AMQ",
                              {"exclude_people": ["wiki-only", "elsewhere"]}, "admin")
    page = site.client.get(ADMIN_PAGE, headers=jira.headers("GET", ADMIN_PAGE, sub=ADMIN))
    assert _shown(page.get_data(as_text=True), "exclude_people") == "Wanda Wiki, elsewhere"
    looked_up = site.client.get(PEOPLE, headers=jira.context_headers(sub=ADMIN)).get_json()
    assert looked_up == {"people": {"wiki-only": "Wanda Wiki", "elsewhere": "elsewhere"}}


def test_the_admin_page_shows_people_by_name_and_saving_it_unchanged_keeps_their_ids(
        site: Site) -> None:
    with site.db.session() as session:
        remember_people(session, site.tenant.tenant_id, [("eve", HOSTILE), ("nell", "Nell\n Line")])
    _save(site, exclude_people=["gtully", "earaya", "eve"], include_people=["rajdavies", "nell"])
    html = site.page(ADMIN_PAGE, sub=ADMIN).get_data(as_text=True)
    assert "gtully" not in html and "<img src=x" not in html  # the name, escaped
    # earaya by id: "Etienne Araya" names two people of the site.
    assert _shown(html, "exclude_people") == f"Gary Tully, earaya, {HOSTILE}"
    # One space for the line break, which a text field would drop ("NellLine" names no one).
    assert _shown(html, "include_people") == "Rob Davies, Nell Line"
    # As the page's script reads each field: split at commas, each entry trimmed.
    typed = {f: [n.strip() for n in _shown(html, f).split(",") if n.strip()] for f in PEOPLE_RULES}
    saved = site.post(SETTINGS, typed, sub=ADMIN)
    assert saved.status_code == 200, saved.get_json()
    assert (saved.get_json()["exclude_people"], saved.get_json()["include_people"]) == (
        ["gtully", "earaya", "eve"], ["rajdavies", "nell"])


def test_the_people_lookup_names_the_stored_ids_and_the_settings_keep_them(site: Site) -> None:
    with site.db.session() as session:  # a person since erased: the site has no name for them
        save_project_settings(session, site.tenant.tenant_id, "AMQ",
                              {"exclude_people": ["gtully", "earaya", "erased"]}, "admin")
    assert site.get(PEOPLE, sub="aco").status_code == 403  # project admins only, as the settings
    looked_up = site.get(PEOPLE, sub=ADMIN)
    assert looked_up.status_code == 200
    assert looked_up.get_json() == {"people": {"gtully": "Gary Tully", "earaya": "earaya",
                                               "erased": "erased"}}
    settings = site.get(SETTINGS, sub=ADMIN).get_json()
    assert settings["exclude_people"] == ["gtully", "earaya", "erased"]  # ids, as before
    again = site.post(SETTINGS, settings, sub=ADMIN)  # a GET posted back changes nothing
    assert again.status_code == 200 and again.get_json() == settings


def test_the_used_share_counts_the_issues_viewed_that_week(site: Site) -> None:
    key = site.keys[-1]
    target = site.get(f"/api/content/jira/{key}/reuse").get_json()["suggestions"][0]
    EVENTS.flush()  # views are written in batches, within a second
    for issue in (key, *site.keys[:4]):  # said helped on this issue, and on four no one opened
        body = {"source": "jira", "key": issue, "target_item_id": target["item_id"],
                "verdict": "helped"}
        assert site.post("/api/feedback", body).status_code == 200
    week = site.get("/api/admin/projects/AMQ/dashboard", sub=ADMIN).get_json()["weeks"][-1]
    assert (week["viewed"], week["used_share"]) == (1, 1.0)


def test_charts_without_data_say_so_rather_than_show_a_maximum(site: Site) -> None:
    with site.db.session() as session:
        session.add(Kudos(tenant_id=site.tenant.tenant_id, source="jira", item_key=site.keys[-1],
                          from_account_id="aco", to_account_id="jstrachan", kind="thanks",
                          message="", created_at=utcnow() - timedelta(minutes=1)))
    html = site.page(ADMIN_PAGE, sub=ADMIN).get_data(as_text=True)
    assert html.count("<svg") == 5 and html.count(">no data yet</text>") == 4
    assert ">max 1</text>" in html and "max 1 h" not in html  # only the kudos chart has a maximum


def test_the_dashboard_counts_kudos_on_the_projects_own_issues(site: Site) -> None:
    site.host.load_jira_issues([v2_issue("A_B-1", 70001, "A project with _ in its key",
                                         "2024-01-02T00:00:00.000+0000")])
    site.host.set_project_admin(ADMIN, "A_B")
    with site.db.session() as session:
        for key in ("A_B-1", "AXB-2", "a_b-3", "A_BC-4"):  # only the first is A_B's
            session.add(Kudos(tenant_id=site.tenant.tenant_id, source="jira", item_key=key,
                              from_account_id="aco", to_account_id="jstrachan", kind="thanks",
                              message="", created_at=utcnow() - timedelta(minutes=1)))
    dashboard = site.get("/api/admin/projects/A_B/dashboard", sub=ADMIN)
    assert dashboard.status_code == 200
    assert dashboard.get_json()["weeks"][-1]["kudos"] == 1


def test_a_panel_turned_off_serves_nothing_and_counts_no_view(site: Site) -> None:
    key = site.stored()
    _save(site, panels={"experts": False, "reuse": False, "contributors": False})
    with site.db.session() as session:
        session.add(Kudos(tenant_id=site.tenant.tenant_id, source="jira", item_key=key,
                          from_account_id="aco", to_account_id="jstrachan", kind="thanks",
                          message="Private thanks.", created_at=utcnow()))
    for panel, lists in (("experts", ("experts", "questions")), ("reuse", ("suggestions",)),
                         ("contributors", ("contributors", "thanks"))):
        data = site.get(f"/api/content/jira/{key}/{panel}").get_json()
        assert data["enabled"] is False and data["item"]["key"] == key
        assert all(data[name] == [] for name in lists), (panel, data)
        page = site.page(f"/jira/panels/{panel}?issueKey={key}&projectKey=AMQ")
        assert "turned this panel off" in page.get_data(as_text=True)
    assert site.get("/api/content/jira/AMQ-999999/experts").status_code == 404  # still no such issue
    EVENTS.flush()
    week = site.get("/api/admin/projects/AMQ/dashboard", sub=ADMIN).get_json()["weeks"][-1]
    assert (week["viewed"], week["shown_share"]) == (0, 0.0)  # nothing was shown to anyone
    _save(site, panels={"reuse": True})  # on again: served at once, not the cached "off"
    assert site.get(f"/api/content/jira/{key}/reuse").get_json()["suggestions"]


def test_contributors_listed_are_no_suggestion_shown_on_the_dashboard(site: Site) -> None:
    key = site.keys[-1]
    _save(site, panels={"experts": False, "reuse": False})  # only the contributors panel shows
    assert site.get(f"/api/content/jira/{key}/contributors").get_json()["contributors"]
    EVENTS.flush()
    week = site.get("/api/admin/projects/AMQ/dashboard", sub=ADMIN).get_json()["weeks"][-1]
    assert (week["viewed"], week["shown_share"]) == (1, 0.0)
