"""Pipeline test helpers: an app on a database with the fake site installed, env set for jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from connect.db import Database
from connect.host_client import HostClient
from connect.models import Tenant
from jobs import core
from plugin.services import permissions
from sandbox.site.server import FakeHost
from tests.conftest import TenantAuth, build_app
from tests.sandbox_site import install_into


@dataclass
class Site:
    """An Inflow app with the fake site installed as a tenant; jobs see the same database."""

    app: Flask
    db: Database
    host: FakeHost
    auth: TenantAuth
    database_url: str

    @property
    def tenant_id(self) -> int:
        return self.auth.tenant_id

    def tenant(self) -> Tenant:
        with self.db.session() as session:
            return session.get(Tenant, self.tenant_id)

    def client(self) -> HostClient:
        return HostClient.for_tenant(self.tenant(), self.host.app_key)


@pytest.fixture
def make_site(
    fake_host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Site]]:
    """Build a Site on a database URL (and optionally Redis), product 'jira' or 'confluence'."""
    apps: list[Flask] = []

    def make(database_url: str, product: str = "jira", redis_url: str | None = None) -> Site:
        monkeypatch.setenv("DATABASE_URL", database_url)
        monkeypatch.setenv("INFLOW_APP_KEY", fake_host.app_key)
        if redis_url:
            monkeypatch.setenv("REDIS_URL", redis_url)
        else:
            monkeypatch.delenv("REDIS_URL", raising=False)
        app = build_app(database_url, **({"REDIS_URL": redis_url} if redis_url else {}))
        apps.append(app)
        db = app.extensions["inflow.db"]
        return Site(app, db, fake_host, install_into(fake_host, db, product), database_url)

    yield make
    for app in apps:
        app.extensions["inflow.db"].dispose()
    core._database_for.cache_clear()  # jobs build their Database from the env per test
    permissions.CACHE.clear()  # the next test's tenant has the same id, its people other rights


def v2_issue(key: str, issue_id: int, summary: str, updated: str, **fields: Any) -> dict[str, Any]:
    """A small v2-shaped issue as the fake site loads them."""
    return {
        "id": str(issue_id),
        "key": key,
        "fields": {
            "project": {"key": key.split("-")[0], "name": key.split("-")[0]},
            "issuetype": {"name": "Bug"},
            "summary": summary,
            "description": f"About {summary}",
            "status": {"name": "Open"},
            "resolution": None,
            "created": "2024-01-01T00:00:00.000+0000",
            "updated": updated,
            "labels": [],
            "components": [],
            "reporter": {"accountId": "alice", "displayName": "Alice"},
            "creator": {"accountId": "alice", "displayName": "Alice"},
            "assignee": {"accountId": "bob", "displayName": "Bob"},
            "comment": {"comments": [], "total": 0},
            **fields,
        },
    }
