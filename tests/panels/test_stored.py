"""Panels read precomputed suggestions and still filter them for the viewer at read time."""
from __future__ import annotations

from sqlalchemy import delete, select

from connect.host_client import HostClient
from connect.models import Tenant
from plugin.matching.precompute import refresh_suggestions, stored_suggestions
from plugin.matching.service import suggest_experts
from plugin.matching.store import get_item
from plugin.models.content import Contribution, Item, StoredSuggestion
from plugin.pipeline import privacy_cycle
from plugin.services.permissions import CACHE
from tests.panels.conftest import VIEWER, Site


def test_panels_serve_stored_suggestions_rechecked_for_the_viewer(site: Site) -> None:
    key = site.keys[-1]
    with site.db.session() as session:
        item = get_item(session, site.tenant.tenant_id, "jira", key)
        refresh_suggestions(session, site.tenant.tenant_id, item.id)
        stored = stored_suggestions(session, site.tenant.tenant_id, item.id)
        # Keep three stored reuse entries: the panel must show exactly these, not a fresh query.
        row = session.scalars(select(StoredSuggestion).where(
            StoredSuggestion.item_id == item.id, StoredSuggestion.kind == "reuse")).one()
        row.payload = row.payload[:3]
    kept = [s.key for s in stored["reuse"][:3]]
    shown = site.get(f"/api/content/jira/{key}/reuse").get_json()["suggestions"]
    assert [s["key"] for s in shown] == kept
    site.host.deny("aco", kept[0])
    CACHE.clear()
    shown = site.get(f"/api/content/jira/{key}/reuse").get_json()["suggestions"]
    assert [s["key"] for s in shown] == kept[1:]
    experts = site.get(f"/api/content/jira/{key}/experts").get_json()["experts"]
    assert experts
    assert all(kept[0] != ev["key"] for e in experts for ev in e["evidence"])
    assert "aco" not in [e["account_id"] for e in experts]  # never suggested to themselves


def test_each_panel_asks_the_host_about_permissions_once(site: Site) -> None:
    checks = "/rest/api/3/permissions/check"
    stored_key, computed_key = site.keys[-1], site.keys[-2]
    with site.db.session() as session:
        item = get_item(session, site.tenant.tenant_id, "jira", stored_key)
        refresh_suggestions(session, site.tenant.tenant_id, item.id)
    for key, panel in [(k, p) for k in (stored_key, computed_key) for p in ("experts", "reuse")]:
        CACHE.clear()
        before = len(site.host.calls_to(checks, "POST"))
        data = site.get(f"/api/content/jira/{key}/{panel}").get_json()
        assert data["item"]["key"] == key and (data.get("experts") or data.get("suggestions"))
        # The item itself and every suggestion are checked in one bulk call.
        assert len(site.host.calls_to(checks, "POST")) - before == 1, (key, panel)


def test_an_issue_view_panel_does_not_ask_about_the_issue_jira_showed(site: Site) -> None:
    """Jira signs an issue panel's URL (issue key under the qsh) only for people who may browse
    the issue: its contributors need no check, the suggestions of the others still do."""
    checks = "/rest/api/3/permissions/check"
    key = site.keys[-1]
    with site.db.session() as session:
        item = get_item(session, site.tenant.tenant_id, "jira", key)
        refresh_suggestions(session, site.tenant.tenant_id, item.id)
        issue_id = int(item.external_id)
    CACHE.clear()
    before = len(site.host.calls_to(checks, "POST"))
    page = site.page(f"/jira/panels/contributors?issueKey={key}&projectKey={key.split('-')[0]}")
    assert page.status_code == 200 and "Contributors" in page.get_data(as_text=True)
    assert len(site.host.calls_to(checks, "POST")) == before
    page = site.page(f"/jira/panels/reuse?issueKey={key}&projectKey={key.split('-')[0]}")
    asked = site.host.calls_to(checks, "POST")[before:]
    assert page.status_code == 200 and len(asked) == 1
    issues = asked[0].json["projectPermissions"][0]["issues"]
    assert issues and issue_id not in issues  # the suggestions only
    # The JSON API's context token names no issue: there the issue is checked too.
    CACHE.clear()
    site.host.deny("aco", key)
    assert site.get(f"/api/content/jira/{key}/contributors").status_code == 404


def _reported(site: Site, key: str) -> str | None:
    with site.db.session() as session:
        item = get_item(session, site.tenant.tenant_id, "jira", key)
        return next((c.account_id for c in session.scalars(select(Contribution).where(
            Contribution.item_id == item.id, Contribution.role == "reporter"))), None)


def test_an_issues_reporter_is_never_suggested_as_its_expert(site: Site) -> None:
    """They raised the problem and are on the issue already: asking them about it helps no one."""
    with site.db.session() as session:
        ids = {key: get_item(session, site.tenant.tenant_id, "jira", key).id for key in site.keys}
        # Ranked without the panel's rules, the reporter is among the people for some issues.
        ranked = {key: [e.account_id for e in suggest_experts(session, site.tenant.tenant_id,
                                                               session.get(Item, item_id), limit=5)]
                  for key, item_id in ids.items()}
    raised = [key for key in site.keys if _reported(site, key) in ranked[key] and _reported(site, key) != VIEWER]
    assert raised
    for key in raised[:3]:
        reporter = _reported(site, key)
        with site.db.session() as session:  # none stored: the panel ranks now
            session.execute(delete(StoredSuggestion).where(StoredSuggestion.item_id == ids[key]))
        computed = site.get(f"/api/content/jira/{key}/experts").get_json()["experts"]
        with site.db.session() as session:
            refresh_suggestions(session, site.tenant.tenant_id, ids[key])
            assert reporter in [e.account_id for e in stored_suggestions(
                session, site.tenant.tenant_id, ids[key])["experts"]]  # stored: the panel decides
        CACHE.clear()
        served = site.get(f"/api/content/jira/{key}/experts").get_json()["experts"]
        for shown in (computed, served):
            assert shown and reporter not in [e["account_id"] for e in shown], key


def test_a_stored_expert_is_shown_under_the_name_the_site_gives_now(site: Site) -> None:
    key = site.stored()
    named = site.get(f"/api/content/jira/{key}/experts").get_json()["experts"][0]
    account = named["account_id"]
    assert named["display_name"] != "Their Chosen Name"
    site.host.rename(account, "Their Chosen Name")
    site.host.set_account_status(account, "updated")
    with site.db.session() as session:
        client = HostClient.for_tenant(session.get(Tenant, site.tenant.tenant_id), site.host.app_key)
    privacy_cycle.report_tenant(site.db, site.tenant.tenant_id, client)
    shown = site.get(f"/api/content/jira/{key}/experts").get_json()["experts"]
    assert {e["account_id"]: e["display_name"] for e in shown}[account] == "Their Chosen Name"
