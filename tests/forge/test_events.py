"""Forge product and lifecycle events land in the same event store, shaped like Connect webhooks."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from connect import lifecycle, webhooks
from connect.models import Tenant, WebhookEvent
from tests.conftest import BASE_URL, install_tenant
from tests.forge.conftest import ForgeInstall
from tests.forge.fit import sign

ISSUE = {"id": "10042", "key": "INF-7", "fields": {
    "summary": "Login fails after password reset", "project": {"key": "INF", "id": "10000"},
    "issuetype": {"name": "Bug"}, "created": "2024-03-01T10:00:00.000+0000",
    "updated": "2024-03-02T09:30:00.000+0000"}}
CHANGELOG = {"id": "555", "items": [{"field": "summary", "fromString": "Login fails",
                                     "toString": "Login fails after password reset"}]}


def forge_issue_event(kind: str = "updated") -> dict[str, Any]:
    return {"eventType": f"avi:jira:{kind}:issue", "atlassianId": "acc-1", "issue": copy.deepcopy(ISSUE),
            "changelog": CHANGELOG, "associatedUsers": [{"accountId": "acc-1"}]}


def stored(app: Flask) -> list[WebhookEvent]:
    with app.extensions["inflow.db"].session() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def test_a_forge_issue_event_is_stored_as_its_connect_webhook(forge_app: Flask,
                                                             forge_install: ForgeInstall) -> None:
    handed: list[tuple[int, int]] = []
    webhooks.set_event_handler(forge_app, lambda t, e: handed.append((t, e)))
    response = forge_app.test_client().post("/forge/events", json=forge_issue_event(),
                                             headers=forge_install.headers(principal=None, ui=False))
    assert response.status_code == 202, response.get_json()
    [event] = stored(forge_app)
    assert (event.event_type, event.product, event.item_ref) == ("jira:issue_updated", "jira", "jira:INF-7")
    assert event.payload["webhookEvent"] == "jira:issue_updated"
    assert event.payload["issue"] == ISSUE and event.payload["changelog"] == CHANGELOG
    assert event.payload["user"] == {"accountId": "acc-1"}
    assert handed == [(event.tenant_id, event.id)]


def test_a_retried_forge_event_is_stored_once(forge_app: Flask, forge_install: ForgeInstall) -> None:
    client = forge_app.test_client()
    first = client.post("/forge/events", json=forge_issue_event(), headers=forge_install.headers(ui=False))
    again = client.post("/forge/events", json=forge_issue_event(), headers=forge_install.headers(ui=False))
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.get_json() == {"duplicate": True} and len(stored(forge_app)) == 1


def test_forge_and_connect_deliveries_of_one_change_store_the_same_event(
        forge_app: Flask, forge_install: ForgeInstall) -> None:
    connect = install_tenant(forge_app.extensions["inflow.db"], "jira")
    url = f"{BASE_URL}/webhooks/jira/issue_updated"
    connect_body = {"timestamp": 1709371800000, "webhookEvent": "jira:issue_updated",
                    "issue_event_type_name": "issue_updated", "user": {"accountId": "acc-1"},
                    "issue": ISSUE, "changelog": CHANGELOG}
    client = forge_app.test_client()
    assert client.post("/webhooks/jira/issue_updated", json=connect_body,
                       headers=connect.headers("POST", url)).status_code == 202
    assert client.post("/forge/events", json=forge_issue_event(),
                       headers=forge_install.headers(ui=False)).status_code == 202
    via_connect, via_forge = stored(forge_app)
    for field in ("event_type", "product", "item_ref", "event_ts"):
        assert getattr(via_forge, field) == getattr(via_connect, field), field
    assert via_forge.payload == via_connect.payload


def test_jira_comment_events_become_comment_webhooks(forge_app: Flask,
                                                     forge_install: ForgeInstall) -> None:
    """Jira's documented comment events: `commented:issue` (added or edited), `deleted:comment`."""
    comment = {"id": "20001", "author": {"accountId": "acc-2"}, "body": "Clear the cache first.",
               "created": "2024-03-03T08:00:00.000+0000", "updated": "2024-03-03T08:00:00.000+0000"}
    edited = {**comment, "body": "Clear both caches first.", "updated": "2024-03-03T09:30:00.000+0000"}
    client = forge_app.test_client()
    for event_type, body in (("avi:jira:commented:issue", comment),
                             ("avi:jira:commented:issue", edited),
                             ("avi:jira:deleted:comment", edited)):
        response = client.post("/forge/events", headers=forge_install.headers(ui=False), json={
            "eventType": event_type, "atlassianId": "acc-2", "issue": ISSUE, "comment": body})
        assert response.status_code == 202, response.get_json()
    added, changed, deleted = stored(forge_app)
    assert (added.event_type, added.item_ref) == ("comment_created", "jira:INF-7")
    assert added.payload["comment"] == comment and added.payload["webhookEvent"] == "comment_created"
    assert (changed.event_type, changed.payload["webhookEvent"]) == ("comment_updated", "comment_updated")
    assert changed.payload["comment"]["body"] == "Clear both caches first."
    assert deleted.event_type == "comment_deleted"


def test_the_manifest_subscribes_to_the_jira_comment_events_forge_sends() -> None:
    """Forge documents no `avi:jira:created:comment`: a trigger on it deploys but never fires."""
    import yaml

    from connect.forge_routes import render_manifest

    triggers = yaml.safe_load(render_manifest(BASE_URL))["modules"]["trigger"]
    events = {event for trigger in triggers for event in trigger["events"]}
    assert {"avi:jira:commented:issue", "avi:jira:deleted:comment"} <= events
    assert not events & {"avi:jira:created:comment", "avi:jira:updated:comment"}


def test_confluence_page_and_comment_events_become_connect_webhooks(
        forge_app: Flask, forge_confluence: ForgeInstall) -> None:
    page = {"id": "98765", "type": "page", "status": "current", "title": "Runbook: resets",
            "space": {"key": "OPS", "id": 12}, "history": {"createdBy": {"accountId": "acc-3"},
                                                            "createdDate": "2024-03-01T10:00:00.000Z"},
            "version": {"number": 4, "by": {"accountId": "acc-4"}, "when": "2024-03-05T10:00:00.000Z"}}
    comment = {"id": "555", "type": "comment", "title": "Re: Runbook", "container": page,
               "history": {"createdBy": {"accountId": "acc-5"}, "createdDate": "2024-03-06T10:00:00.000Z"}}
    client = forge_app.test_client()
    headers = forge_confluence.headers(ui=False)
    assert client.post("/forge/events", headers=headers, json={
        "eventType": "avi:confluence:updated:page", "atlassianId": "acc-4", "content": page}).status_code == 202
    assert client.post("/forge/events", headers=headers, json={
        "eventType": "avi:confluence:created:comment", "atlassianId": "acc-5", "content": comment}).status_code == 202
    updated, commented = stored(forge_app)
    assert (updated.event_type, updated.product, updated.item_ref) == ("page_updated", "confluence", "confluence:98765")
    assert updated.payload["page"]["spaceKey"] == "OPS" and updated.payload["page"]["version"] == 4
    assert updated.payload["userAccountId"] == "acc-4" and "webhookEvent" not in updated.payload
    assert (commented.event_type, commented.item_ref) == ("comment_created", "confluence:98765")
    assert commented.payload["comment"]["parent"]["id"] == "98765"
    # Ancestors that are not a list: stored without a parent (as an unknown shape is), not a 500.
    orphan = {**comment, "id": "556", "container": None, "ancestors": 5}
    assert client.post("/forge/events", headers=headers, json={
        "eventType": "avi:confluence:created:comment", "content": orphan}).status_code == 202
    assert "parent" not in stored(forge_app)[-1].payload["comment"]


def test_confluence_label_events_become_label_webhooks(forge_app: Flask,
                                                      forge_confluence: ForgeInstall) -> None:
    """A page's label is re-read like Connect's label_added; a space's label names no item."""
    client = forge_app.test_client()
    label = {"id": "7", "name": "kafka", "prefix": "global"}
    page = {"id": "98765", "type": "page", "title": "Runbook: resets", "space": {"key": "OPS"}}
    for body in ({"eventType": "avi:confluence:added:label", "label": label, "content": page},
                 {"eventType": "avi:confluence:removed:label", "label": label, "space": {"key": "OPS"}}):
        response = client.post("/forge/events", headers=forge_confluence.headers(ui=False), json=body)
        assert response.status_code == 202, response.get_json()
    added, removed = stored(forge_app)
    assert (added.event_type, added.item_ref) == ("label_added", "confluence:98765")
    assert added.payload["labeled"]["contentType"] == "page" and added.payload["label"] == label
    assert (removed.event_type, removed.item_ref) == ("label_removed", None)
    missing = client.post("/forge/events", headers=forge_confluence.headers(ui=False),
                          json={"eventType": "avi:confluence:added:label", "space": {"key": "OPS"}})
    assert missing.status_code == 400 and len(stored(forge_app)) == 2


def test_events_that_cannot_be_mapped_get_400_and_store_nothing(forge_app: Flask,
                                                                forge_install: ForgeInstall) -> None:
    client = forge_app.test_client()
    headers = forge_install.headers(ui=False)
    misshapen = {**forge_issue_event(), "issue": {**ISSUE, "fields": "not an object"}}
    for body in ({"eventType": "avi:jira:created:worklog"}, {"eventType": "avi:jira:updated:issue"},
                 {"issue": ISSUE}, ["not", "an", "object"], misshapen,
                 {"eventType": [], "issue": ISSUE}, {"eventType": {}, "issue": ISSUE},
                 {"eventType": "avi:jira:created:issuelink", "id": "10500"}):
        response = client.post("/forge/events", json=body, headers=headers)
        assert response.status_code == 400 and response.get_json()["error"] == "bad_request", body
    assert client.post("/forge/events", data=b"{nope", headers={**headers, "Content-Type": "application/json"}
                       ).status_code == 400
    assert stored(forge_app) == []


def test_a_jira_event_from_a_confluence_installation_is_refused(
        forge_app: Flask, forge_confluence: ForgeInstall) -> None:
    response = forge_app.test_client().post("/forge/events", json=forge_issue_event(),
                                            headers=forge_confluence.headers(ui=False))
    assert response.status_code == 403 and stored(forge_app) == []


def test_install_and_upgrade_create_then_refresh_the_forge_tenant(
        forge_app: Flask, forge_install: ForgeInstall) -> None:
    notified: list[tuple[str, int]] = []
    lifecycle.set_lifecycle_handler(forge_app, lambda event, tenant: notified.append((event, tenant)))
    client = forge_app.test_client()
    installed = client.post("/forge/lifecycle", headers=forge_install.headers(ui=False, principal="admin-1"),
                            json={"eventType": "avi:forge:installed:app", "installerAccountId": "admin-1",
                                  "app": {"id": "x", "version": "1"}})
    assert installed.status_code == 200, installed.get_json()
    upgraded = client.post("/forge/lifecycle", headers=forge_install.headers(ui=False),
                           json={"eventType": "avi:forge:upgraded:app"})
    assert upgraded.status_code == 200
    assert client.get("/api/echo", headers=forge_install.headers()).status_code == 200
    with forge_app.extensions["inflow.db"].session() as session:
        [tenant] = session.scalars(select(Tenant)).all()
        assert tenant.forge_installation_id == forge_install.installation_id
        assert tenant.display_url.endswith(".atlassian.net")  # learnt from the UI call
    assert notified == [("installed", tenant.id)]
    assert client.post("/forge/lifecycle", headers=forge_install.headers(ui=False),
                       json={"eventType": "avi:forge:deleted:app"}).status_code == 400
    assert stored(forge_app) == []


def test_lifecycle_payloads_as_atlassian_documents_them_install_and_upgrade(
        forge_app: Flask, forge_install: ForgeInstall) -> None:
    """The documented payloads carry no `eventType`: who installed or upgraded tells which."""
    notified: list[tuple[str, int]] = []
    lifecycle.set_lifecycle_handler(forge_app, lambda event, tenant: notified.append((event, tenant)))
    client = forge_app.test_client()
    app = {"id": "406d303d-0393-4ec4-ad7c-1435be94583a", "version": "2.0.0"}
    installed = client.post("/forge/lifecycle", headers=forge_install.headers(ui=False), json={
        "id": forge_install.installation_id, "installerAccountId": "admin-1", "app": app,
        "environment": {"id": "env-1"}})
    assert installed.get_json()["event"] == "avi:forge:installed:app"
    upgraded = client.post("/forge/lifecycle", headers=forge_install.headers(ui=False), json={
        "id": forge_install.installation_id, "upgraderAccountId": "admin-1", "app": app})
    assert upgraded.get_json()["event"] == "avi:forge:upgraded:app"
    assert [event for event, _ in notified] == ["installed"]  # one backfill, at the install
    unknown = client.post("/forge/lifecycle", headers=forge_install.headers(ui=False),
                          json={"eventType": "avi:forge:exploded:app"})
    assert unknown.status_code == 400


def test_forge_tenants_and_events_store_on_each_database(database_url: str, jwks: Any,
                                                         forge_install: ForgeInstall) -> None:
    from tests.forge.conftest import connect_only_app
    from tests.forge.fit import APP_ID

    app = connect_only_app(database_url, INFLOW_FORGE_JWKS_URL=jwks.url, INFLOW_FORGE_APP_ID=APP_ID)
    try:
        client = app.test_client()
        for _ in range(2):
            client.post("/forge/events", json=forge_issue_event(), headers=forge_install.headers(ui=False))
        [event] = stored(app)
        assert (event.event_type, event.item_ref) == ("jira:issue_updated", "jira:INF-7")
    finally:
        app.extensions["inflow.db"].dispose()


def test_background_jobs_call_the_product_with_the_last_forge_system_token(
        forge_app: Flask, forge_install: ForgeInstall) -> None:
    from connect.forge import ForgeHostClient
    from connect.host_client import HostClient, HostError

    response = forge_app.test_client().post("/forge/events", json=forge_issue_event(),
                                            headers=forge_install.headers(ui=False))
    assert response.status_code == 202
    with forge_app.extensions["inflow.db"].session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.host == "forge"))
    assert tenant.forge_system_token == "system-token"
    # Outside any request (as in an rq job) the stored token signs the product calls.
    client = HostClient.for_tenant(tenant, "io.inflow.app")
    assert isinstance(client, ForgeHostClient)
    assert client.base_url == tenant.forge_api_base_url
    tenant.forge_token_expires_at = tenant.created_at  # long expired
    try:
        HostClient.for_tenant(tenant, "io.inflow.app")
    except HostError as exc:
        assert "Forge system token" in str(exc.body)
    else:
        raise AssertionError("an expired Forge token must not be used")


def test_a_time_past_any_clock_is_taken_as_the_receipt_time(forge_app: Flask,
                                                            forge_install: ForgeInstall) -> None:
    client = forge_app.test_client()
    for when in (1e300, 10**30):
        body = {**forge_issue_event(), "timestamp": when, "issue": {**ISSUE, "fields": {
            **ISSUE["fields"], "updated": None, "created": None}}}
        response = client.post("/forge/events", json=body, headers=forge_install.headers(ui=False))
        assert response.status_code == 202, response.data
    assert all(0 < event.event_ts < 2**53 for event in stored(forge_app))


def test_a_product_token_with_an_expiry_past_any_clock_is_used_for_its_minimum_life() -> None:
    import jwt as pyjwt

    from connect.db import utcnow
    from connect.forge import SYSTEM_TOKEN_LIFETIME, token_expiry

    now = utcnow()
    for exp in (1e30, -1e30):
        token = pyjwt.encode({"exp": exp}, "k" * 32, algorithm="HS256")
        assert token_expiry(token, now) == now + SYSTEM_TOKEN_LIFETIME


@pytest.mark.parametrize("path,body", [
    ("/forge/events", {"eventType": "avi:jira:deleted:issue", "issue": {"id": "1", "key": "INF-7"}}),
    ("/forge/lifecycle", {"eventType": "avi:forge:installed:app"}),
    ("/forge/scheduled", {}),
])
def test_a_users_panel_token_cannot_deliver_events_or_lifecycle_calls(
        forge_app: Flask, forge_install: ForgeInstall, path: str, body: dict[str, Any]) -> None:
    # Custom UI chooses the path and body of its remote calls: a panel's valid FIT must not be
    # able to delete or rewrite stored items, or queue backfills, by posting what a trigger posts.
    client = forge_app.test_client()
    assert client.get("/api/echo", headers=forge_install.headers(principal="mallory")).status_code == 200
    response = client.post(path, json=body, headers=forge_install.headers(principal="mallory"))
    assert response.status_code == 403, response.get_json()
    assert stored(forge_app) == []


@pytest.mark.parametrize("key", [["inflow-events"], {"key": "inflow-events"}])
def test_a_trigger_module_key_that_is_not_a_string_is_refused_not_a_500(
        forge_app: Flask, forge_install: ForgeInstall, key: Any) -> None:
    forge_app.config["PROPAGATE_EXCEPTIONS"] = False
    claims = forge_install.claims(ui=False)
    claims["app"]["module"] = {"type": "core:endpoint", "key": key}
    headers = {"Authorization": f"Bearer {sign(claims, forge_install.key)}"}
    response = forge_app.test_client().post("/forge/events", json=forge_issue_event(), headers=headers)
    assert response.status_code == 403, response.get_json()
    assert stored(forge_app) == []
