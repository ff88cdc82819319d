"""A project's admin chooses the projects and spaces its similar work comes from."""
from __future__ import annotations

from typing import Any

from plugin.services.panel_cache import FRAGMENTS
from tests.conftest import TenantAuth
from tests.panels import test_cross_product
from tests.panels.conftest import Site
from tests.panels.test_cross_product import PAGE_ID, VIEWER

both = test_cross_product.both  # the fixture: the fake site's Jira and Confluence, a runbook page
ADMIN = "hiram"
SETTINGS = "/api/admin/projects/AMQ/settings"


def _choose(site: Site, jira: TenantAuth, projects: list[str], spaces: list[str]) -> None:
    current = site.client.get(SETTINGS, headers=jira.context_headers(sub=ADMIN)).get_json()
    body = {k: v for k, v in current.items() if k in (
        "purpose", "panels", "include_groups", "exclude_groups", "include_people", "exclude_people",
        "follow_up_hours", "privacy")}
    saved = site.client.post(SETTINGS, json={**body, "learn_projects": projects, "learn_spaces": spaces},
                             headers=jira.context_headers(sub=ADMIN))
    assert saved.status_code == 200, saved.get_json()


def _similar(site: Site, jira: TenantAuth, key: str) -> list[tuple[str, str]]:
    response = site.client.get(f"/api/content/jira/{key}/reuse", headers=jira.context_headers(sub=VIEWER))
    assert response.status_code == 200
    return [(s["source"], s["key"]) for s in response.get_json()["suggestions"]]


def _panel(site: Site, jira: TenantAuth, key: str) -> Any:
    path = f"/jira/panels/reuse?issueKey={key}&projectKey=AMQ"
    return site.client.get(path, headers=jira.headers("GET", path, sub=VIEWER))


def test_similar_work_comes_only_from_the_chosen_projects_and_spaces(both: tuple) -> None:
    site, jira, wiki, key = both
    site.host.set_project_admin(ADMIN, "AMQ")
    FRAGMENTS.clear()
    everything = _similar(site, jira, key)
    assert ("confluence", PAGE_ID) in everything and any(s == "jira" for s, _ in everything)
    before = _panel(site, jira, key)
    assert PAGE_ID in before.get_data(as_text=True)

    _choose(site, jira, [], ["NOSUCHSPACE"])  # pages from one other space only: the runbook goes
    only_issues = _similar(site, jira, key)
    assert ("confluence", PAGE_ID) not in only_issues
    assert [s for s in only_issues if s[0] == "jira"][:3] == [s for s in everything if s[0] == "jira"][:3]
    assert PAGE_ID not in _panel(site, jira, key).get_data(as_text=True)  # the cached view too

    _choose(site, jira, ["ZZZ"], [])  # issues from another project only: every issue goes
    assert [s for s in _similar(site, jira, key) if s[0] == "jira"] == []

    _choose(site, jira, [], [])  # empty lists: everything again
    assert _similar(site, jira, key) == everything
