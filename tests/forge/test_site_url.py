"""Links stored for a Forge site point at the site people open, never at Forge's API gateway."""
from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from connect.host_client import HostClient
from connect.models import Tenant
from plugin.models.content import Item
from plugin.pipeline import backfill
from sandbox.site import data
from sandbox.site.server import FakeHost
from tests.forge.conftest import ForgeInstall
from tests.forge.fit import SigningKey, installation


@pytest.mark.parametrize("product", ["jira", "confluence"])
def test_a_site_installed_by_a_trigger_gets_links_on_its_own_url(
    full_app: Flask, forge_key: SigningKey, fake_host: FakeHost, product: str
) -> None:
    if product == "jira":
        fake_host.load_jira_issues(data.jira_dataset("apache-activemq")[:10])
    else:
        fake_host.load_confluence_pages(data.confluence_pages()[:10])
    forge = ForgeInstall(forge_key, product=product, ids=(installation()[0], fake_host.cloud_id),
                         api_host=fake_host.url, system_token=fake_host.issue_forge_token(product))
    installed = full_app.test_client().post(  # a trigger's token: no siteUrl in its context
        "/forge/lifecycle", json={"eventType": "avi:forge:installed:app"},
        headers=forge.headers(ui=False, principal=None))
    assert installed.status_code == 200
    db = full_app.extensions["inflow.db"]
    with db.session() as session:
        tenant = session.scalar(select(Tenant))
        assert tenant.display_url is None and "/ex/" in tenant.base_url

    assert backfill.run_backfill(db, tenant.id, lambda t: HostClient.for_tenant(t, "io.inflow.app"))
    site = fake_host.base_url(product).removesuffix("/wiki")
    with db.session() as session:
        urls = list(session.scalars(select(Item.url)))
        assert session.get(Tenant, tenant.id).display_url == site
    assert len(urls) == 10 and all(url.startswith(site + "/") and "/ex/" not in url for url in urls)
