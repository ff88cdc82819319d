"""Forge sends no uninstall event; the hourly trigger and refused product calls tell instead."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from connect import forge_presence, lifecycle
from connect.db import utcnow
from connect.host_client import HostClient
from connect.models import Tenant, WebhookEvent
from sandbox.site.server import FakeHost
from tests.forge.conftest import ForgeInstall
from tests.forge.fit import installation
from tests.forge.test_events import forge_issue_event


@pytest.fixture
def on_site(forge_install: ForgeInstall, fake_host: FakeHost) -> ForgeInstall:
    """A Jira installation whose product calls reach the fake site with tokens it issued."""
    return ForgeInstall(forge_install.key, ids=(installation()[0], fake_host.cloud_id),
                        api_host=fake_host.url, system_token=fake_host.issue_forge_token("jira"))


def client_for(tenant: Tenant) -> HostClient:
    return HostClient.for_tenant(tenant, "io.inflow.app")


def the_tenant(app: Flask) -> Tenant | None:
    with app.extensions["inflow.db"].session() as session:
        return session.scalar(select(Tenant))


def test_a_site_that_keeps_refusing_the_app_is_marked_uninstalled_then_purged(
        forge_app: Flask, on_site: ForgeInstall, fake_host: FakeHost) -> None:
    from plugin.pipeline import purge

    client = forge_app.test_client()
    assert client.post("/forge/events", json=forge_issue_event(),
                       headers=on_site.headers(ui=False)).status_code == 202
    db, now = forge_app.extensions["inflow.db"], utcnow()
    assert forge_presence.check_all(db, client_for, now) == {"ok": 1}
    fake_host.revoke_forge_tokens()  # what the site does once the app is uninstalled
    answers = [forge_presence.check_all(db, client_for, now + timedelta(hours=h))
               for h in (1, 12, 25)]
    assert answers == [{"refused": 1}, {"refused": 1}, {"uninstalled": 1}]
    tenant = the_tenant(forge_app)
    assert not tenant.installed and tenant.uninstalled_at == now + timedelta(hours=25)
    with db.session() as session:  # purged exactly as a Connect uninstall: after the period
        assert purge.due_for_purge(session, 30, now + timedelta(days=30)) == []
        due = purge.due_for_purge(session, 30, now + timedelta(hours=25, days=30))
        assert due == [tenant.id]
        purge.purge_tenant(session, tenant.id)
    with db.session() as session:
        assert session.scalar(select(func.count(WebhookEvent.id))) == 0
        assert session.scalar(select(func.count(Tenant.id))) == 0


def test_refusals_for_less_than_a_day_or_outages_do_not_uninstall(
        forge_app: Flask, on_site: ForgeInstall, fake_host: FakeHost) -> None:
    client = forge_app.test_client()
    assert client.get("/api/echo", headers=on_site.headers()).status_code == 200
    db, now = forge_app.extensions["inflow.db"], utcnow()
    fake_host.inject("/rest/api/3/project/search", 503, times=20)
    assert forge_presence.check_all(db, client_for, now) == {"unknown": 1}
    fake_host.injections.clear()
    fake_host.revoke_forge_tokens()
    for hours in range(0, 24, 4):  # six refusals, but within a day
        assert forge_presence.check_all(db, client_for, now + timedelta(hours=hours)) == \
            {"refused": 1}
    # Any verified Forge call in between says the app is there: the count starts again.
    assert client.get("/api/echo", headers=on_site.headers()).status_code == 200
    assert forge_presence.check_all(db, client_for, now + timedelta(hours=30)) == {"refused": 1}
    tenant = the_tenant(forge_app)
    assert tenant.installed and tenant.forge_refusals == 1


def test_a_site_whose_hourly_trigger_stopped_is_inferred_uninstalled(
        forge_app: Flask, on_site: ForgeInstall) -> None:
    assert forge_app.test_client().get("/api/echo", headers=on_site.headers()).status_code == 200
    db, now = forge_app.extensions["inflow.db"], utcnow()
    with db.session() as session:  # no Forge call for hours: the last system token lapsed
        session.scalar(select(Tenant)).forge_token_expires_at = now - timedelta(hours=1)
    answers = [forge_presence.check_all(db, client_for, now + timedelta(hours=h))
               for h in (0, 12, 24)]
    assert answers == [{"refused": 1}, {"refused": 1}, {"uninstalled": 1}]


def test_one_site_failing_its_check_does_not_stop_the_others(
        forge_app: Flask, on_site: ForgeInstall) -> None:
    assert forge_app.test_client().get("/api/echo", headers=on_site.headers()).status_code == 200
    db = forge_app.extensions["inflow.db"]
    with db.session() as session:  # a second Forge site, whose client cannot be made
        first = session.scalar(select(Tenant))
        session.add(Tenant(client_key="broken", shared_secret="", base_url=first.base_url,
                           product_type="jira", host="forge"))

    def failing_for_one(tenant: Tenant) -> HostClient:
        if tenant.client_key == "broken":
            raise ValueError("no usable token stored")
        return client_for(tenant)

    assert forge_presence.check_all(db, failing_for_one) == {"failed": 1, "ok": 1}


def scheduled_body(retry: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"context": {"cloudId": "c", "moduleKey": "inflow-hourly"},
                            "contextToken": "ctx-token-of-this-invocation"}
    if retry is not None:
        body["retryContext"] = {"retryData": None, "retryCount": retry,
                                "retryReason": "TIMEOUT_ERROR"}
    return body


def test_the_hourly_trigger_stores_the_token_and_queues_reconciliation_once_under_retries(
        forge_app: Flask, forge_install: ForgeInstall) -> None:
    notified: list[tuple[str, int]] = []
    lifecycle.set_lifecycle_handler(forge_app, lambda event, t: notified.append((event, t)))
    client = forge_app.test_client()
    headers = forge_install.headers(ui=False, principal=None)
    answers = [client.post("/forge/scheduled", json=scheduled_body(retry), headers=headers)
               for retry in (None, 1, 2, 3)]
    assert [a.status_code for a in answers] == [202, 200, 200, 200]
    tenant = the_tenant(forge_app)
    assert notified == [("scheduled", tenant.id)]
    assert tenant.forge_system_token == "system-token" and tenant.forge_token_expires_at > utcnow()
    # The next hour's invocation is a new one.
    later = client.post("/forge/scheduled", headers=headers,
                        json={**scheduled_body(), "contextToken": "next-invocation"})
    assert later.status_code == 202 and len(notified) == 2


def test_an_hourly_trigger_without_a_body_still_queues_reconciliation(
        forge_app: Flask, forge_install: ForgeInstall) -> None:
    notified: list[tuple[str, int]] = []
    lifecycle.set_lifecycle_handler(forge_app, lambda event, t: notified.append((event, t)))
    answer = forge_app.test_client().post("/forge/scheduled",
                                          headers=forge_install.headers(ui=False, principal=None))
    assert answer.status_code == 202
    assert notified == [("scheduled", the_tenant(forge_app).id)]


def test_a_redelivered_product_event_is_applied_once(forge_app: Flask,
                                                     forge_install: ForgeInstall) -> None:
    handed: list[int] = []
    from connect import webhooks
    webhooks.set_event_handler(forge_app, lambda t, e: handed.append(e))
    client = forge_app.test_client()
    headers = forge_install.headers(ui=False)
    first = client.post("/forge/events", json=forge_issue_event(), headers=headers)
    retried = [client.post("/forge/events", headers=headers, json={
        **forge_issue_event(), "retryContext": {"retryData": None, "retryCount": n,
                                                "retryReason": "INVALID_REMOTE_INVOCATION_ERROR"}})
        for n in (1, 2)]
    wrapped = client.post("/forge/events", headers=headers, json={"payload": {
        **forge_issue_event(), "retryContext": {"retryCount": 3}}})
    assert first.status_code == 202 and len(handed) == 1
    assert all(r.status_code == 200 and r.get_json() == {"duplicate": True}
               for r in (*retried, wrapped))


def test_event_and_trigger_endpoints_answer_quickly_and_leave_the_work_queued(
        full_app: Flask, on_site: ForgeInstall, fake_host: FakeHost) -> None:
    client = full_app.test_client()
    started = time.monotonic()
    assert client.post("/forge/lifecycle", json={"eventType": "avi:forge:installed:app"},
                       headers=on_site.headers(ui=False)).status_code == 200
    assert client.post("/forge/scheduled", json=scheduled_body(),
                       headers=on_site.headers(ui=False)).status_code == 202
    assert client.post("/forge/events", json=forge_issue_event(),
                       headers=on_site.headers(ui=False)).status_code == 202
    assert time.monotonic() - started < 5.0
    assert fake_host.calls == []  # backfill, reconciliation and the event wait for a worker
