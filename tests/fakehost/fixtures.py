"""Pytest fixture for the fake Atlassian site (registered as a plugin in tests/conftest.py)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from connect.impersonation import TOKENS
from tests.fakehost.server import FakeHost


@pytest.fixture
def fake_host() -> Iterator[FakeHost]:
    """A running fake Jira + Confluence site on a free loopback port; also the OAuth server.

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
