"""Project admin rules and dashboard: who may be suggested, and the adoption figures."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connect.db import utcnow
from plugin.models.social import Kudos
from plugin.services.panel_cache import EVENTS
from tests.panels.conftest import Site
from tests.panels.test_cached_views import JIRA_VIEWS, assert_as_uncached, warm
from tests.pipeline.conftest import v2_issue

ADMIN = "chirino"
SETTINGS = "/api/admin/projects/AMQ/settings"


@pytest.fixture(autouse=True)
def admin(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")


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
    _save(site, include_people=["hiram", second, first], exclude_people=[first])
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
