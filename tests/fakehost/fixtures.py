"""Pytest fixture for the fake Atlassian site (registered as a plugin in tests/conftest.py)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from connect.impersonation import TOKENS
from tests.fakehost.server import FakeHost


@pytest.fixture
def fake_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHost]:
    """A running fake Jira + Confluence site on a free loopback port; also the OAuth server."""
    host = FakeHost().start()
    monkeypatch.setenv("INFLOW_AUTH_SERVER_URL", host.url)
    TOKENS.clear()  # tokens from another test's site would be unknown here
    try:
        yield host
    finally:
        host.stop()
        TOKENS.clear()
