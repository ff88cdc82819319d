"""One change delivered by Forge or by a Connect webhook ends as the same items and suggestions."""
from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from connect.host_client import HostClient
from connect.models import Tenant, WebhookEvent
from plugin import search
from plugin.pipeline import reconcile
from sandbox import datasets
from sandbox.site.server import FakeHost
from tests.conftest import BASE_URL, TenantAuth, install_tenant
from tests.forge.conftest import ForgeInstall
from tests.forge.fit import SigningKey, installation

ISSUES = 25


def sample_issues() -> list[dict[str, Any]]:
    return datasets.jira_rest_sample()[:ISSUES]


def deliver_connect(app: Flask, tenant: TenantAuth, issue: dict[str, Any]) -> None:
    body = {"timestamp": 1700000000000, "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_updated", "issue": issue}
    url = f"{BASE_URL}/webhooks/jira/issue_updated"
    response = app.test_client().post("/webhooks/jira/issue_updated", json=body,
                                      headers=tenant.headers("POST", url))
    assert response.status_code == 202, response.get_json()


def deliver_forge(app: Flask, install: ForgeInstall, issue: dict[str, Any]) -> None:
    body = {"eventType": "avi:jira:updated:issue", "issue": issue}
    response = app.test_client().post("/forge/events", json=body,
                                      headers=install.headers(ui=False, principal=None))
    assert response.status_code == 202, response.get_json()


def process_all(app: Flask) -> None:
    from plugin.pipeline.events import process_event

    db = app.extensions["inflow.db"]
    with db.session() as session:
        ids = list(session.scalars(select(WebhookEvent.id).order_by(WebhookEvent.id)))
    for event_id in ids:
        with db.session() as session:
            # Every sample issue carries its comments, so nothing is re-read from a host.
            assert process_event(session, event_id, lambda tenant: None)
    assert search.catch_up(db)


def snapshot(app: Flask, tenant_id: int, target_key: str) -> dict[str, Any]:
    from plugin.matching.service import suggest_experts, suggest_reuse
    from plugin.matching.store import get_item
    from plugin.models.content import Contribution, Item

    with app.extensions["inflow.db"].session() as session:
        items = {i.key: (i.title, i.text, i.project, i.status, i.resolution)
                 for i in session.scalars(select(Item).where(Item.tenant_id == tenant_id))}
        contributions = sorted(session.execute(
            select(Item.key, Contribution.account_id, Contribution.role)
            .join(Item, Item.id == Contribution.item_id)
            .where(Contribution.tenant_id == tenant_id)).all())
        target = get_item(session, tenant_id, "jira", target_key)
        reuse = [(s.key, round(s.score, 6), s.reasons) for s in suggest_reuse(session, tenant_id, target)]
        experts = [(e.account_id, round(e.score, 6), e.reason)
                   for e in suggest_experts(session, tenant_id, target)]
    return {"items": items, "contributions": contributions, "reuse": reuse, "experts": experts}


def test_a_forge_event_gives_the_same_items_and_suggestions_as_the_connect_webhook(
        full_app: Flask, forge_install: ForgeInstall) -> None:
    issues = sample_issues()
    connect = install_tenant(full_app.extensions["inflow.db"], "jira")
    # The first UI call tells us the site URL, so item links point at the site, not the API.
    assert full_app.test_client().get("/api/me", headers=forge_install.headers()).status_code == 200
    for issue in issues:
        deliver_connect(full_app, connect, issue)
        deliver_forge(full_app, forge_install, issue)
    process_all(full_app)
    with full_app.extensions["inflow.db"].session() as session:
        from connect.models import Tenant
        forge_tenant = session.scalar(select(Tenant).where(Tenant.host == "forge")).id
    via_connect = snapshot(full_app, connect.tenant_id, issues[0]["key"])
    via_forge = snapshot(full_app, forge_tenant, issues[0]["key"])
    assert len(via_connect["items"]) == ISSUES and via_connect["reuse"]
    assert via_forge == via_connect


def test_a_forge_site_is_reconciled_without_connects_failed_webhooks(
    full_app: Flask, forge_key: SigningKey, fake_host: FakeHost
) -> None:
    """Jira documents /rest/api/3/webhook/failed as "Only Connect apps can use this operation" (and
    `manage:jira-webhook`, which the manifest does not ask for): a Forge token must not call it."""
    forge = ForgeInstall(forge_key, ids=(installation()[0], fake_host.cloud_id),
                         api_host=fake_host.url, system_token=fake_host.issue_forge_token("jira"))
    installed = full_app.test_client().post(
        "/forge/lifecycle", json={"eventType": "avi:forge:installed:app"},
        headers=forge.headers(ui=False, principal=None))
    assert installed.status_code == 200
    db = full_app.extensions["inflow.db"]
    with db.session() as session:
        tenant_id = session.scalar(select(Tenant.id))

    result = reconcile.reconcile_tenant(db, tenant_id, lambda t: HostClient.for_tenant(t, "io.inflow.app"))
    assert result == {"changed": 0}
    assert not [c for c in fake_host.calls if "webhook/failed" in c.path]
