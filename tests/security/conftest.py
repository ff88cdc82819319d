"""One app with every way in configured: install keys, Forge JWKS, a fake site, two tenants."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connect.db import Base, Database
from plugin.services.permissions import CACHE
from sandbox.site.server import FakeHost
from tests.conftest import TenantAuth, build_app, install_tenant
from tests.connect.conftest import KeyService, atlassian_key, key_service, signer  # noqa: F401
from tests.forge.conftest import forge_key, jwks  # noqa: F401
from tests.forge.fit import APP_ID, JWKSServer
from tests.sandbox_site import install_into


def table_checksums(db: Database) -> dict[str, str]:
    """A digest of every row of every table (what 'nothing changed' is checked against)."""
    sums = {}
    with db.session() as session:
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = session.execute(select(table).order_by(*order)).all()
            sums[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return sums


@dataclass
class Target:
    """The app under attack, its fake site (tenant A) and a second installed tenant (B)."""

    app: Flask
    client: FlaskClient
    db: Database
    host: FakeHost
    a: TenantAuth
    a_confluence: TenantAuth
    b: TenantAuth


@pytest.fixture
def target(tmp_path: Path, fake_host: FakeHost, key_service: KeyService,  # noqa: F811
           jwks: JWKSServer) -> Iterator[Target]:  # noqa: F811
    CACHE.clear()
    app = build_app(f"sqlite:///{tmp_path / 'inflow.db'}", INFLOW_APP_KEY=fake_host.app_key,
                    INFLOW_INSTALL_KEYS_URL=key_service.url, INFLOW_FORGE_JWKS_URL=jwks.url,
                    INFLOW_FORGE_APP_ID=APP_ID, INFLOW_AUTH_SERVER_URL=fake_host.url)
    db: Database = app.extensions["inflow.db"]
    a = install_into(fake_host, db, "jira")
    a_confluence = install_into(fake_host, db, "confluence")
    b = install_tenant(db, "jira")
    yield Target(app, app.test_client(), db, fake_host, a, a_confluence, b)
    db.dispose()
    CACHE.clear()
