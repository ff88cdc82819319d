"""The sandbox site as a pytest fixture (registered as a plugin in tests/conftest.py)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connect.db import Database
from connect.impersonation import TOKENS
from connect.models import Tenant
from sandbox.site.server import FakeHost


@pytest.fixture
def fake_host() -> Iterator[FakeHost]:
    """A running sandbox Jira + Confluence site on a free loopback port; also the OAuth server.

    Point clients at it as their authorization server: `HostClient.for_tenant(...,
    auth_server=host.url)`, or an app's `INFLOW_AUTH_SERVER_URL` config.
    """
    host = FakeHost().start()
    TOKENS.clear()  # tokens from another test's site would be unknown here
    try:
        yield host
    finally:
        host.stop()
        TOKENS.clear()


def install_into(host: FakeHost, db: Database, product: str = "jira") -> Any:
    """Store the site as an installed tenant, as the lifecycle would; returns a TenantAuth.

    A shortcut for tests that are not about installing: the demo installs through a signed
    `/installed` call instead (sandbox/site/install.py).
    """
    from tests.conftest import TenantAuth

    install = host.installs[product]
    with db.session() as session:
        tenant = Tenant(client_key=install.client_key, shared_secret=install.secret,
                        base_url=host.base_url(product), display_url=host.base_url(product),
                        product_type=product, oauth_client_id=install.oauth_client_id,
                        cloud_id=f"cloud-{install.client_key}")
        session.add(tenant)
        session.flush()
        tenant_id = tenant.id
    return TenantAuth(tenant_id, install.client_key, install.secret, host.base_url(product),
                      product)
