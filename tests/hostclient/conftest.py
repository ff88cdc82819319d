"""Clients for the fake site's Jira and Confluence installs."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from connect.host_client import HostClient
from sandbox.site.server import DEFAULT_APP_KEY, FakeHost


def tenant_of(host: FakeHost, product: str = "jira") -> SimpleNamespace:
    """What the tenant store would hold after the site installed the app."""
    install = host.installs[product]
    return SimpleNamespace(base_url=host.base_url(product), shared_secret=install.secret,
                           client_key=install.client_key, oauth_client_id=install.oauth_client_id)


@pytest.fixture
def jira_client(fake_host: FakeHost) -> HostClient:
    return HostClient.for_tenant(tenant_of(fake_host, "jira"), DEFAULT_APP_KEY,
                                 auth_server=fake_host.url)


@pytest.fixture
def confluence_client(fake_host: FakeHost) -> HostClient:
    return HostClient.for_tenant(tenant_of(fake_host, "confluence"), DEFAULT_APP_KEY,
                                 auth_server=fake_host.url)
