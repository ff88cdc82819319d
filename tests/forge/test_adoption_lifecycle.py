"""A Forge installation's first calls, and the Connect app it replaced, never lock the site out."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from connect.models import Tenant
from tests.conftest import BASE_URL, TenantAuth, install_tenant
from tests.forge.conftest import ForgeInstall
from tests.forge.fit import SigningKey

ISSUE = {"id": "10042", "key": "INF-7", "fields": {"summary": "Broker drops messages",
                                                   "project": {"key": "INF"}}}


def _connect_lifecycle(app: Flask, tenant: TenantAuth, event: str) -> int:
    """A Connect lifecycle call for the tenant, signed with its shared secret as the host signs
    /enabled and /disabled."""
    body = {"clientKey": tenant.client_key, "key": "io.inflow.app", "baseUrl": tenant.base_url,
            "productType": "jira", "eventType": event, "sharedSecret": tenant.secret,
            "description": "", "pluginsVersion": "1", "serverVersion": "1"}
    return app.test_client().post(f"/{event}", json=body,
                                  headers=tenant.headers("POST", f"{BASE_URL}/{event}")).status_code


def _connect_tenant_of(app: Flask, forge: ForgeInstall) -> TenantAuth:
    db = app.extensions["inflow.db"]
    tenant = install_tenant(db, "jira")
    with db.session() as session:
        session.get(Tenant, tenant.tenant_id).cloud_id = forge.cloud_id
    return tenant


def _works(app: Flask, forge: ForgeInstall, edit: int = 1) -> list[int]:
    """A panel's call and a product event (the issue's `edit`th change: a new event)."""
    client = app.test_client()
    issue = {**ISSUE, "fields": {**ISSUE["fields"], "summary": f"Broker drops messages ({edit})"}}
    return [client.get("/api/me", headers=forge.headers(principal="acc-1")).status_code,
            client.post("/forge/events", json={"eventType": "avi:jira:updated:issue", "issue": issue},
                        headers=forge.headers(ui=False, principal=None)).status_code]


def test_a_new_installations_parallel_first_calls_all_answer_and_make_one_tenant(
    full_app: Flask, forge_key: SigningKey
) -> None:
    installs = [ForgeInstall(forge_key) for _ in range(6)]

    def call(job: tuple[ForgeInstall, int]) -> int:
        forge, n = job
        client = full_app.test_client()
        if n == 3:
            return client.post("/forge/lifecycle", json={"eventType": "avi:forge:installed:app"},
                               headers=forge.headers(ui=False, principal=None)).status_code
        return client.get("/api/me", headers=forge.headers(principal=f"acc-{n}")).status_code

    with ThreadPoolExecutor(4) as pool:  # as an issue view's panels call at once
        statuses = list(pool.map(call, [(forge, n) for forge in installs for n in range(4)]))
    assert set(statuses) == {200}
    with full_app.extensions["inflow.db"].session() as session:
        assert session.scalar(select(func.count(Tenant.id))) == len(installs)


def test_a_site_that_disabled_its_connect_app_can_install_the_forge_app(
    full_app: Flask, forge_install: ForgeInstall
) -> None:
    connect = _connect_tenant_of(full_app, forge_install)
    assert _connect_lifecycle(full_app, connect, "disabled") == 204
    assert _works(full_app, forge_install) == [200, 202]
    with full_app.extensions["inflow.db"].session() as session:
        tenant = session.get(Tenant, connect.tenant_id)
        assert (tenant.host, tenant.enabled, tenant.installed) == ("forge", True, True)


def test_disabling_the_connect_app_after_the_move_leaves_the_forge_app_working(
    full_app: Flask, forge_install: ForgeInstall
) -> None:
    connect = _connect_tenant_of(full_app, forge_install)
    assert _works(full_app, forge_install) == [200, 202]  # Forge adopts the Connect tenant
    assert _connect_lifecycle(full_app, connect, "disabled") == 204
    assert _works(full_app, forge_install, edit=2) == [200, 202]
    with full_app.extensions["inflow.db"].session() as session:
        tenant: Any = session.get(Tenant, connect.tenant_id)
        assert (tenant.enabled, tenant.installed) == (True, True)
