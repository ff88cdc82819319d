"""One change delivered by Forge or by a Connect webhook ends as the same items and suggestions."""
from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from connect.host_client import HostClient
from connect.models import Tenant, WebhookEvent
from plugin import search
from plugin.models.content import Item
from plugin.pipeline import backfill, reconcile
from sandbox import datasets
from sandbox.site import data
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


def test_a_page_commented_after_its_last_edit_then_trashed_leaves_inflow(
    full_app: Flask, forge_key: SigningKey, fake_host: FakeHost
) -> None:
    """A trash keeps the page's version time; Confluence dates the event by `eventCreatedDate`."""
    page_id = fake_host.load_confluence_pages(data.confluence_pages()[:3])[0]  # edited 2024-10-03
    forge = ForgeInstall(forge_key, product="confluence", ids=(installation()[0], fake_host.cloud_id),
                         api_host=fake_host.url, system_token=fake_host.issue_forge_token("confluence"))
    db, client, headers = full_app.extensions["inflow.db"], full_app.test_client(), forge.headers(ui=False)
    assert client.post("/forge/lifecycle", json={"id": forge.installation_id}, headers=headers).status_code == 200
    with db.session() as session:
        tenant_id = session.scalar(select(Tenant.id))
    assert backfill.run_backfill(db, tenant_id, client_for)
    author = {"accountId": "synthetic:87a2e8805eca432de55cc9da"}
    fake_host.add_footer_comment(page_id, author["accountId"], "<p>Run it with coverage on</p>")
    edited = {"when": "2024-10-03T00:00:00.000Z", "number": 3}
    comment = {"id": "100000", "type": "comment", "title": "Re: Code coverage",
               "history": {"createdBy": author, "createdDate": "2024-10-04T00:00:00.000Z"},
               "version": {"when": "2024-10-04T00:00:00.000Z", "number": 1},
               "container": {"id": int(page_id), "type": "page", "version": edited}}
    trashed = {"id": page_id, "type": "page", "status": "trashed", "version": edited}
    for event_type, content, at in (("avi:confluence:created:comment", comment, "2024-10-04T00:00:01.000Z"),
                                    ("avi:confluence:trashed:page", trashed, "2024-10-05T00:00:00.000Z")):
        response = client.post("/forge/events", headers=headers, json={
            "eventType": event_type, "eventCreatedDate": at, "content": content})
        assert response.status_code == 202, response.get_json()
        apply_stored(db)
    with db.session() as session:
        assert page_id not in set(session.scalars(select(Item.key)))


def client_for(tenant: Tenant) -> HostClient:
    return HostClient.for_tenant(tenant, "io.inflow.app")


def apply_stored(db: Any) -> None:
    """Apply every stored event as the drain job does, re-reading from the site."""
    from plugin.pipeline.events import process_event

    with db.session() as session:
        pending = list(session.scalars(select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None))))
    for event_id in pending:
        with db.session() as session:
            assert process_event(session, event_id, client_for)


def test_a_link_made_in_the_reuse_panel_reaches_both_issues(
    full_app: Flask, forge_key: SigningKey, fake_host: FakeHost
) -> None:
    """Forge's issue link events re-read both issues, as Connect's issuelink webhooks do."""
    first, second = fake_host.load_jira_issues(data.jira_dataset("apache-activemq")[:5])[:2]
    forge = ForgeInstall(forge_key, ids=(installation()[0], fake_host.cloud_id),
                         api_host=fake_host.url, system_token=fake_host.issue_forge_token("jira"))
    db, client = full_app.extensions["inflow.db"], full_app.test_client()
    assert client.post("/forge/lifecycle", json={"id": forge.installation_id},
                       headers=forge.headers(ui=False)).status_code == 200
    with db.session() as session:
        tenant_id = session.scalar(select(Tenant.id))
    assert backfill.run_backfill(db, tenant_id, client_for)
    viewer = "557058:linker"
    as_viewer = {**forge.headers(principal=viewer),
                 "x-forge-oauth-user": f"Bearer {fake_host.issue_forge_token('jira', account_id=viewer)}"}
    linked = client.post("/api/links", headers=as_viewer,
                         json={"key": first, "target_key": second, "link_type": "duplicate"})
    assert linked.status_code == 201, linked.get_json()
    ids = {key: issue_id for issue_id, key in fake_host.store.issue_ids.items()}
    response = client.post("/forge/events", headers=forge.headers(ui=False), json={
        "eventType": "avi:jira:created:issuelink", "id": "10500", "sourceIssueId": ids[first],
        "destinationIssueId": ids[second], "issueLinkType": {"id": "10002", "name": "Duplicate"}})
    assert response.status_code == 202, response.get_json()
    apply_stored(db)
    with db.session() as session:
        links = dict(session.execute(select(Item.key, Item.links).where(Item.key.in_([first, second]))).all())
    assert second in links[first] and first in links[second]
