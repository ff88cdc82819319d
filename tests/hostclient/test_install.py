"""The fake site installs into the tenant store, and a stored tenant's client works against it."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from connect.db import Database
from connect.host_client import HostClient
from connect.models import Tenant
from sandbox.site.server import FakeHost
from tests.sandbox_site import install_into


@pytest.fixture
def tenant_store(sqlite_url: str) -> Iterator[Database]:
    """Just the tenant store (the host client needs nothing of the product)."""
    database = Database(sqlite_url)
    database.create_all()
    yield database
    database.dispose()


def test_installed_tenants_reach_the_site_as_app_and_as_user(fake_host: FakeHost,
                                                              tenant_store: Database) -> None:
    db = tenant_store
    fake_host.load_jira_dataset("apache-zookeeper", limit=5)
    fake_host.load_confluence_dataset(limit=5)
    jira_auth = install_into(fake_host, db)
    wiki_auth = install_into(fake_host, db, "confluence")
    with db.session() as session:
        jira = session.scalars(select(Tenant).where(Tenant.id == jira_auth.tenant_id)).one()
        wiki = session.scalars(select(Tenant).where(Tenant.id == wiki_auth.tenant_id)).one()
        session.expunge_all()
    assert jira.base_url == fake_host.url and wiki.base_url == fake_host.url + "/wiki"
    app_client = HostClient.for_tenant(jira, "io.inflow.app", auth_server=fake_host.url)
    keys = [i["key"] for i in app_client.request("GET", "/rest/api/3/search/jql", params={
        "jql": "project = ZOOKEEPER", "fields": "summary"}).json()["issues"]]
    assert len(keys) == 5
    user = app_client.as_user("phunt").request("GET", f"/rest/api/3/issue/{keys[0]}")
    assert user.json()["key"] == keys[0]
    spaces = HostClient.for_tenant(wiki, "io.inflow.app").confluence().get_spaces()
    assert {s["key"] for s in spaces} >= {"BESU", "TSC"}
