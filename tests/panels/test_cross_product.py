"""One site, both products: issues suggest pages and pages suggest issues, each checked by its own product."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from plugin import search
from plugin.content.normalize import confluence_page_to_doc
from plugin.matching.store import upsert_item
from plugin.services.permissions import CACHE
from sandbox.site import data
from tests.conftest import TenantAuth
from tests.panels.conftest import Site, install_wiki

VIEWER = "chirino"
PAGE_ID = "990001"


def _runbook(site: Site, issue_key: str) -> dict[str, Any]:
    """A Confluence page written about a stored Jira issue (its summary and description)."""
    with site.db.session() as session:
        from plugin.matching.store import get_item
        issue = get_item(session, site.tenant.tenant_id, "jira", issue_key)
        title, text = issue.title, issue.text
    page = copy.deepcopy(data.confluence_pages()[0])
    page["id"], page["title"] = PAGE_ID, f"Runbook: {title}"
    page["body"]["storage"]["value"] = f"<p>{title}</p><p>{text[:1500]}</p><p>How we fixed it.</p>"
    return page


@pytest.fixture
def both(site: Site) -> tuple[Site, TenantAuth, TenantAuth, str]:
    """The fake site's Jira and Confluence installed, plus a runbook page about one of the issues."""
    jira = site.tenant
    key = site.keys[-1]
    page = _runbook(site, key)
    install_wiki(site)
    site.host.load_confluence_pages([page])
    spaces = {s["id"]: s["key"] for s in data.confluence_spaces()}
    with site.db.session() as session:
        upsert_item(session, site.tenant.tenant_id, confluence_page_to_doc(
            page, site.tenant.base_url, space_key=spaces.get(page.get("spaceId"))))
    assert search.catch_up(site.db)
    return site, jira, site.tenant, key


def _get(site: Site, tenant: TenantAuth, path: str, sub: str = VIEWER) -> dict[str, Any]:
    response = site.client.get(path, headers=tenant.context_headers(sub=sub))
    assert response.status_code == 200, response.get_data(True)
    return response.get_json()


def test_an_issue_suggests_the_page_about_it_and_the_page_suggests_the_issue(both: tuple) -> None:
    site, jira, wiki, key = both
    on_issue = _get(site, jira, f"/api/content/jira/{key}/reuse")["suggestions"]
    assert ("confluence", PAGE_ID) in {(s["source"], s["key"]) for s in on_issue}
    on_page = _get(site, wiki, f"/api/content/confluence/{PAGE_ID}/reuse")["suggestions"]
    assert ("jira", key) in {(s["source"], s["key"]) for s in on_page}


def test_each_product_checks_its_own_candidates(both: tuple) -> None:
    site, jira, wiki, key = both
    site.host.deny(VIEWER, PAGE_ID)  # Confluence refuses the page: only it goes
    on_issue = _get(site, jira, f"/api/content/jira/{key}/reuse")["suggestions"]
    assert on_issue and all(s["source"] == "jira" for s in on_issue)
    site.host.deny(VIEWER, key)  # Jira refuses the issue: the page no longer shows it
    on_page = _get(site, wiki, f"/api/content/confluence/{PAGE_ID}/reuse", sub="rajdavies")["suggestions"]
    assert ("jira", key) in {(s["source"], s["key"]) for s in on_page}
    site.host.deny("rajdavies", key)  # they still see the page, no longer the issue
    CACHE.clear()
    hidden = _get(site, wiki, f"/api/content/confluence/{PAGE_ID}/reuse", sub="rajdavies")
    assert ("jira", key) not in {(s["source"], s["key"]) for s in hidden["suggestions"]}


def test_without_the_other_installation_its_items_are_left_out(both: tuple) -> None:
    from connect.models import Tenant

    site, jira, wiki, key = both
    with site.db.session() as session:
        session.get(Tenant, wiki.tenant_id).installed = False  # Confluence uninstalled
    on_issue = _get(site, jira, f"/api/content/jira/{key}/reuse")["suggestions"]
    assert on_issue and all(s["source"] == "jira" for s in on_issue)


def test_the_admin_page_says_whether_confluence_is_linked(both: tuple) -> None:
    from connect.models import Tenant

    site, jira, wiki, _ = both
    site.host.set_project_admin(VIEWER, "AMQ")
    path = "/jira/admin?projectKey=AMQ"

    def admin_page() -> str:
        response = site.client.get(path, headers=jira.headers("GET", path, sub=VIEWER))
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert "Confluence linked" in admin_page()
    with site.db.session() as session:
        session.get(Tenant, wiki.tenant_id).installed = False
    assert "Confluence not linked" in admin_page()


def test_stored_suggestions_keep_the_other_products_items(both: tuple) -> None:
    from plugin.matching import precompute
    from plugin.matching.store import get_item

    site, jira, wiki, key = both
    with site.db.session() as session:
        precompute.refresh_suggestions(session, jira.tenant_id,
                                       get_item(session, jira.tenant_id, "jira", key).id)
    site.host.deny(VIEWER, PAGE_ID)  # still checked with Confluence, as each viewer
    allowed = _get(site, jira, f"/api/content/jira/{key}/reuse", sub="rajdavies")["suggestions"]
    assert ("confluence", PAGE_ID) in {(s["source"], s["key"]) for s in allowed}
    denied = _get(site, jira, f"/api/content/jira/{key}/reuse")["suggestions"]
    assert ("confluence", PAGE_ID) not in {(s["source"], s["key"]) for s in denied}


def test_a_choice_made_in_one_product_holds_in_the_other(both: tuple) -> None:
    """One person, one site: opting out (or back in) on either product's personal page counts on both."""
    site, jira, wiki, key = both

    def experts(tenant: TenantAuth, source: str, item: str) -> list[str]:
        return [e["account_id"] for e in _get(site, tenant, f"/api/content/{source}/{item}/experts")["experts"]]

    def choose(tenant: TenantAuth, person: str, opted_out: bool) -> None:
        body = {"opted_out": opted_out, "pause_days": None, "weekly_digest": None}
        assert site.client.post("/api/me/preferences", json=body,
                                headers=tenant.context_headers(sub=person)).status_code == 200

    person = next(a for a in experts(wiki, "confluence", PAGE_ID) if a != VIEWER)
    choose(jira, person, True)
    assert person not in experts(wiki, "confluence", PAGE_ID)
    asked = site.client.post("/api/questions", json={"source": "confluence", "key": PAGE_ID,
                                                     "expert_account_id": person, "text": "Can you help?"},
                             headers=wiki.context_headers(sub=VIEWER))
    assert asked.status_code in (409, 422)
    choose(wiki, person, False)
    assert person in experts(wiki, "confluence", PAGE_ID)
    choose(jira, person, True)  # the same choice as before, made again: the latest holds
    assert person not in experts(wiki, "confluence", PAGE_ID)
    me = site.client.get("/api/me", headers=wiki.context_headers(sub=person)).get_json()
    assert me["preferences"]["opted_out"] is True
