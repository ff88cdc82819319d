"""People's names: pages carry account ids only, so panels ask the host, briefly and in bulk."""
from __future__ import annotations

import re
import time
from datetime import timedelta

from sqlalchemy import select, update

from connect.db import utcnow
from plugin.models.content import Contribution, Item, Person
from plugin.models.social import Kudos
from plugin.services.people import UNKNOWN
from sandbox.site import data
from tests.panels.conftest import Site, install_wiki

BULK = "/wiki/rest/api/user/bulk"


def _page_with_contributors(site: Site) -> str:
    with site.db.session() as session:
        return session.scalar(select(Item.key).join(Contribution, Contribution.item_id == Item.id)
                              .where(Item.tenant_id == site.tenant.tenant_id).limit(1))


def test_confluence_contributors_get_their_names_from_the_host_once(site: Site) -> None:
    wiki = install_wiki(site, names=False)
    page = _page_with_contributors(wiki)
    names = {u["accountId"]: u["displayName"] for u in data.confluence_users()}
    body = wiki.get(f"/api/content/confluence/{page}/contributors").get_json()
    people = body["contributors"]
    assert people and all(p["display_name"] == names[p["account_id"]] for p in people)
    [call] = wiki.host.calls_to(BULK, "GET")
    assert call.auth == "jwt"  # asked as the app, all accounts in one call
    with wiki.db.session() as session:
        stored = dict(session.execute(select(Person.account_id, Person.display_name).where(
            Person.tenant_id == wiki.tenant.tenant_id,
            Person.account_id.in_([p["account_id"] for p in people]))).all())
    assert stored == {p["account_id"]: p["display_name"] for p in people}
    html = wiki.page(f"/confluence/macros/contributors?pageId={page}&spaceKey=TSC")
    assert people[0]["display_name"] in html.get_data(as_text=True)
    assert len(wiki.host.calls_to(BULK, "GET")) == 1  # written back: no second lookup


def test_a_slow_host_leaves_names_unknown_without_holding_the_panel(site: Site) -> None:
    wiki = install_wiki(site, names=False)
    page = _page_with_contributors(wiki)
    wiki.host.inject(BULK, 200, times=5, delay=6.0)
    started = time.perf_counter()
    body = wiki.get(f"/api/content/confluence/{page}/contributors").get_json()
    assert time.perf_counter() - started < 4.0
    assert body["contributors"] and {p["display_name"] for p in body["contributors"]} == {UNKNOWN}
    # The failure is remembered for a little while: the next panel does not wait again.
    started = time.perf_counter()
    wiki.get(f"/api/content/confluence/{page}/contributors")
    assert time.perf_counter() - started < 1.0
    assert len(wiki.host.calls_to(BULK, "GET")) == 1


def test_a_failing_host_shows_unknown_users(site: Site) -> None:
    wiki = install_wiki(site, names=False)
    page = _page_with_contributors(wiki)
    wiki.host.inject(BULK, 500, times=1)
    body = wiki.get(f"/api/content/confluence/{page}/contributors")
    assert body.status_code == 200
    assert {p["display_name"] for p in body.get_json()["contributors"]} == {UNKNOWN}


def test_jira_people_without_a_name_are_looked_up_in_bulk(site: Site) -> None:
    key = site.keys[-1]
    with site.db.session() as session:
        item = session.scalar(select(Item).where(Item.key == key))
        accounts = set(session.scalars(select(Contribution.account_id).where(
            Contribution.item_id == item.id)))
        session.execute(update(Person).where(Person.account_id.in_(accounts))
                        .values(display_name=None))
    people = site.get(f"/api/content/jira/{key}/contributors").get_json()["contributors"]
    assert {p["account_id"] for p in people} == accounts
    assert all(p["display_name"] not in (None, UNKNOWN) for p in people)
    [call] = site.host.calls_to("/rest/api/3/user/bulk", "GET")
    assert sorted(v for k, v in call.query if k == "accountId") == sorted(accounts)


def test_the_recognition_board_names_people_the_pages_only_know_by_id(site: Site) -> None:
    wiki = install_wiki(site, names=False)
    user = data.confluence_users()[0]
    with wiki.db.session() as session:
        session.add(Kudos(tenant_id=wiki.tenant.tenant_id, source="confluence",
                          item_key=wiki.keys[0], space="TSC", from_account_id="aco",
                          to_account_id=user["accountId"], kind="thanks", message="",
                          created_at=utcnow() - timedelta(hours=1)))
    html = wiki.page(f"/confluence/macros/recognition?pageId={wiki.keys[0]}&scope=site"
                     "&period=week").get_data(as_text=True)
    assert f"1. {user['displayName']}" in html


def test_an_empty_recognition_board_says_where_in_confluence_people_are_thanked(site: Site) -> None:
    wiki = install_wiki(site, names=False)
    html = wiki.page(f"/confluence/macros/recognition?pageId={wiki.keys[0]}&scope=site"
                     "&period=week").get_data(as_text=True)
    assert "No kudos given in this period yet" in html
    assert "Contributors and kudos macro" in html and "Inflow byline" in html  # Confluence has no panel


def test_an_expert_without_a_name_is_asked_without_naming_them(site: Site) -> None:
    key = site.keys[-1]
    with site.db.session() as session:
        session.execute(update(Person).values(display_name=None))
    site.host.inject("/rest/api/3/user/bulk", 503, times=1)
    html = site.page(f"/jira/panels/experts?issueKey={key}&projectKey=AMQ").get_data(True)
    texts = re.findall(r'<textarea[^>]*name="text"[^>]*>([^<]*)</textarea>', html)
    assert UNKNOWN in html and texts and all(t.startswith("You worked on similar issues") for t in texts)
    assert not any(UNKNOWN in t for t in texts)


def test_confluence_pictures_link_to_the_site_people_open(site: Site) -> None:
    """Never to Atlassian's API gateway, which Forge calls go through and browsers cannot load."""
    from connect.forge import ForgeHostClient, ForgeInvocation
    from connect.models import Tenant
    from plugin.services.people import picture_url

    wiki = install_wiki(site, names=False)
    with wiki.db.session() as session:
        session.execute(update(Tenant).where(Tenant.id == wiki.tenant.tenant_id)
                        .values(display_url="https://people.example/wiki"))
    page = _page_with_contributors(wiki)
    people = wiki.get(f"/api/content/confluence/{page}/contributors").get_json()["contributors"]
    assert people and all(p["avatar_url"].startswith("https://people.example/wiki/aa-avatar/") for p in people)

    gateway = ForgeHostClient.for_invocation(ForgeInvocation(
        claims={}, app_id="app", installation_id="i-1", cloud_id="c-1", product="confluence",
        api_base_url="https://api.atlassian.com/ex/confluence/c-1", site_url=None, principal=None,
        system_token="token"), "io.inflow.app")
    assert picture_url(gateway, "/wiki/aa-avatar/1", None) is None
    assert picture_url(gateway, "/wiki/aa-avatar/1", "https://people.example") == \
        "https://people.example/wiki/aa-avatar/1"
