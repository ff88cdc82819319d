"""A person's data on a site with both products: export, erasure and choices span both."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from plugin.models.content import Contribution
from plugin.models.social import PersonPreference
from tests.conftest import TenantAuth
from tests.panels import test_cross_product
from tests.panels.conftest import Site
from tests.panels.test_cross_product import PAGE_ID, VIEWER

both = test_cross_product.both  # the fixture: the fake site's Jira and Confluence, a runbook page


def _get(site: Site, tenant: TenantAuth, path: str, sub: str = VIEWER) -> Any:
    response = site.client.get(path, headers=tenant.context_headers(sub=sub))
    assert response.status_code == 200, response.get_data(True)
    return response.get_json()


def _experts(site: Site, tenant: TenantAuth, source: str, item: str) -> list[str]:
    return [e["account_id"] for e in _get(site, tenant, f"/api/content/{source}/{item}/experts")["experts"]]


def _choose(site: Site, tenant: TenantAuth, person: str, opted_out: bool) -> None:
    body = {"opted_out": opted_out, "pause_days": None, "weekly_digest": None}
    assert site.client.post("/api/me/preferences", json=body,
                            headers=tenant.context_headers(sub=person)).status_code == 200


def _erase(site: Site, tenant: TenantAuth, person: str) -> None:
    assert site.client.post("/api/me/erase", json={"confirm": "ERASE"},
                            headers=tenant.context_headers(sub=person)).status_code == 200


def _jira_expert_on_the_page(site: Site, wiki: TenantAuth) -> str:
    """Someone the page's experts macro suggests for their Jira work."""
    return next(a for a in _experts(site, wiki, "confluence", PAGE_ID) if a != VIEWER)


def test_the_personal_page_and_export_show_the_work_in_both_products(both: tuple) -> None:
    site, jira, wiki, key = both
    person = _jira_expert_on_the_page(site, wiki)
    from_wiki = _get(site, wiki, "/api/me/export", sub=person)
    assert from_wiki["contributions"] and {c["source"] for c in from_wiki["contributions"]} >= {"jira"}
    assert from_wiki["contributions"] == _get(site, jira, "/api/me/export", sub=person)["contributions"]
    assert _get(site, wiki, "/api/me", sub=person)["evidence"]


def test_erasing_in_one_product_erases_the_person_in_both(both: tuple) -> None:
    site, jira, wiki, key = both
    person = _jira_expert_on_the_page(site, wiki)
    _erase(site, wiki, person)
    assert person not in _experts(site, wiki, "confluence", PAGE_ID)
    assert person not in _experts(site, jira, "jira", key)
    assert _get(site, jira, "/api/me/export", sub=person)["contributions"] == []
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Contribution).where(
            Contribution.account_id == person)) == 0


def test_export_gives_the_choice_that_holds_on_the_site_and_each_made(both: tuple) -> None:
    site, jira, wiki, key = both
    person = _jira_expert_on_the_page(site, wiki)
    _choose(site, wiki, person, True)
    exported = _get(site, jira, "/api/me/export", sub=person)
    assert exported["preferences"]["opted_out"] is True
    assert [(c["product"], c["opted_out"]) for c in exported["choices"]] == [("confluence", True)]


def test_erasure_keeps_the_latest_choice_not_an_older_one_of_the_other_product(both: tuple) -> None:
    site, jira, wiki, key = both
    person = _jira_expert_on_the_page(site, wiki)
    _choose(site, wiki, person, True)   # out, in Confluence
    _choose(site, jira, person, False)  # later back in, in Jira: this holds
    _erase(site, jira, person)
    assert _get(site, wiki, "/api/me", sub=person)["preferences"]["opted_out"] is False
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(PersonPreference).where(
            PersonPreference.account_id == person)) == 0


def test_erasure_keeps_an_opt_out_that_holds(both: tuple) -> None:
    site, jira, wiki, key = both
    person = _jira_expert_on_the_page(site, wiki)
    _choose(site, jira, person, False)
    _choose(site, wiki, person, True)  # the latest: out
    _erase(site, jira, person)
    assert _get(site, wiki, "/api/me", sub=person)["preferences"]["opted_out"] is True
    assert _get(site, jira, "/api/me", sub=person)["preferences"]["opted_out"] is True
