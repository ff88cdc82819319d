"""Forge on both products: the other product's lapsed token hides its items, never the panel."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connect.db import utcnow
from connect.models import Tenant
from plugin.services.permissions import CACHE
from tests.forge.fit import APP_ID, JWKSServer, SigningKey, fit_claims, sign
from tests.panels import test_cross_product
from tests.panels.conftest import Site
from tests.panels.test_cross_product import PAGE_ID, VIEWER

both = test_cross_product.both  # the fixture: the fake site's Jira and Confluence, a runbook page
JIRA, WIKI = "ari:cloud:ecosystem::installation/j1", "ari:cloud:ecosystem::installation/c1"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey()


def _serve_by_forge(site: Site, tenant_id: int, product: str, installation: str, lapsed: bool = False) -> None:
    """The installation as Forge runs it: its stored system token, valid or lapsed."""
    with site.db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        tenant.client_key, tenant.host = f"forge:{installation}", "forge"
        tenant.forge_installation_id, tenant.cloud_id = installation, site.host.cloud_id
        tenant.forge_api_base_url = f"{site.host.url}/ex/{product}/{site.host.cloud_id}"
        tenant.forge_system_token = site.host.issue_forge_token(product)
        tenant.forge_token_expires_at = utcnow() + (-timedelta(minutes=1) if lapsed else timedelta(hours=1))


def _reuse(site: Site, key: SigningKey, issue: str) -> tuple[int, list[tuple[str, str]]]:
    claims = fit_claims(JIRA, site.host.cloud_id, product="jira", principal=VIEWER, api_host=site.host.url,
                        context={"cloudId": site.host.cloud_id, "siteUrl": site.host.url})
    response = site.client.get(f"/api/content/jira/{issue}/reuse", headers={
        "Authorization": f"Bearer {sign(claims, key)}",
        "x-forge-oauth-system": f"Bearer {site.host.issue_forge_token('jira')}"})
    found = [(s["source"], s["key"]) for s in (response.get_json() or {}).get("suggestions", [])]
    return response.status_code, found


def test_a_lapsed_confluence_token_leaves_pages_out_of_a_jira_panel(both: tuple, key: SigningKey) -> None:
    site, jira, wiki, issue = both
    jwks = JWKSServer([key]).start()
    try:
        site.app.config.update(INFLOW_FORGE_JWKS_URL=jwks.url, INFLOW_FORGE_APP_ID=APP_ID)
        _serve_by_forge(site, jira.tenant_id, "jira", JIRA)
        _serve_by_forge(site, wiki.tenant_id, "confluence", WIKI)
        status, found = _reuse(site, key, issue)
        assert status == 200 and ("confluence", PAGE_ID) in found

        CACHE.clear()  # no permission answer kept from the call above
        _serve_by_forge(site, wiki.tenant_id, "confluence", WIKI, lapsed=True)
        status, found_now = _reuse(site, key, issue)
        assert status == 200
        assert ("confluence", PAGE_ID) not in found_now
        assert [f for f in found if f[0] == "jira"][:3] == [f for f in found_now if f[0] == "jira"][:3]
    finally:
        jwks.stop()
