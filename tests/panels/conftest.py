"""Fixtures for the panel tests: an app on SQLite, the fake host installed, real issues ingested."""
from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connect.db import Database, utcnow
from connect.models import Tenant
from plugin import search
from plugin.config import Settings
from plugin.content.model import ItemDoc
from plugin.content.normalize import confluence_page_to_doc, jira_issue_to_doc
from plugin.matching.precompute import refresh_suggestions
from plugin.matching.store import get_item, remember_people, upsert_item
from plugin.models.social import PanelEvent
from plugin.services.people import BACKOFF, PROFILES
from plugin.services.permissions import CACHE
from sandbox.site import data
from sandbox.site.server import FakeHost
from tests.conftest import TenantAuth, build_app, install_tenant

DATASET = "apache-activemq"
SLICE = 300
SEED_SITE = "https://seed.atlassian.net"
VIEWER = "aco"


def _shifted(doc: ItemDoc, offset: timedelta) -> ItemDoc:
    doc.created, doc.updated = doc.created + offset, doc.updated + offset
    for contribution in doc.contributions:
        contribution.at = contribution.at + offset
    return doc


def seed_issues(db: Database, tenant_id: int, site_url: str,
                issues: list[dict[str, Any]]) -> list[str]:
    """Ingest issues through the matching engine, as the pipeline would; returns their keys.

    The 2006 issues are moved forward in time so the newest was filed a week ago: expertise decays
    with age, and the panels should see a live site, not an archive.
    """
    docs = [jira_issue_to_doc(issue, site_url) for issue in issues]
    offset = utcnow() - timedelta(days=7) - max(doc.created for doc in docs)
    with db.session() as session:
        for doc in docs:
            upsert_item(session, tenant_id, _shifted(doc, offset))
    return [doc.key for doc in docs]


@dataclass
class Site:
    """The app, its client and database, and the fake Jira site installed as a tenant."""

    app: Flask
    client: FlaskClient
    db: Database
    host: FakeHost
    tenant: TenantAuth
    keys: list[str]

    def context(self, sub: str | None = VIEWER) -> dict[str, str]:
        """Headers as the iframe sends them (context JWT from AP.context.getToken)."""
        return self.tenant.context_headers(sub=sub)

    def post(self, path: str, body: Any, sub: str | None = VIEWER) -> Any:
        return self.client.post(path, json=body, headers=self.context(sub))

    def get(self, path: str, sub: str | None = VIEWER) -> Any:
        return self.client.get(path, headers=self.context(sub))

    def page(self, path: str, sub: str | None = VIEWER) -> Any:
        """GET an iframe page with a qsh JWT, as the host loads it."""
        return self.client.get(path, headers=self.tenant.headers("GET", path, sub=sub))

    def stored(self, index: int = -1) -> str:
        """The key of one of the site's issues (or pages), with its suggestions computed and stored."""
        key = self.keys[index]
        with self.db.session() as session:
            item = get_item(session, self.tenant.tenant_id, self.tenant.product, key)
            refresh_suggestions(session, self.tenant.tenant_id, item.id)
        return key

    def views(self, panel: str) -> int:
        """How many views of a panel the adoption events written so far count."""
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(PanelEvent).where(
                PanelEvent.panel == panel, PanelEvent.kind == "viewed")) or 0


@pytest.fixture(scope="session")
def activemq_issues() -> list[dict[str, Any]]:
    return data.jira_dataset(DATASET)[:SLICE]


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory: pytest.TempPathFactory,
                    activemq_issues: list[dict[str, Any]]) -> tuple[Path, list[str]]:
    """A SQLite file with one Jira tenant that has learned the issues (built once, then copied)."""
    path = tmp_path_factory.mktemp("seed") / "seed.db"
    app = build_app(f"sqlite:///{path}")
    db: Database = app.extensions["inflow.db"]
    # Its search shard beside it, copied with it: the copies' progress rows name its identity.
    search.bind(db, dataclasses.replace(Settings.from_env(), index_dir=path.parent / "index"))
    tenant = install_tenant(db, "jira", base_url=SEED_SITE)
    keys = seed_issues(db, tenant.tenant_id, SEED_SITE, activemq_issues)
    assert search.catch_up(db)
    db.dispose()
    return path, keys


def adopt_fake_host(db: Database, host: FakeHost, product: str = "jira") -> TenantAuth:
    """Point the seeded tenant at this fake host's install (keys and URLs), as a reinstall would."""
    install = host.installs[product]
    with db.session() as session:
        tenant = session.scalars(select(Tenant).where(Tenant.product_type == product)).one()
        tenant.client_key, tenant.shared_secret = install.client_key, install.secret
        tenant.base_url = tenant.display_url = host.base_url(product)
        tenant.oauth_client_id = install.oauth_client_id
        tenant_id = tenant.id
    return TenantAuth(tenant_id, install.client_key, install.secret, host.base_url(product),
                      product)


@pytest.fixture
def site(tmp_path: Path, fake_host: FakeHost, activemq_issues: list[dict[str, Any]],
         seeded_database: tuple[Path, list[str]], index_dir: Path) -> Iterator[Site]:
    """A Jira tenant backed by the fake host serving (and Inflow knowing) 300 ActiveMQ issues."""
    for cache in (CACHE, PROFILES, BACKOFF):
        cache.clear()
    seed, keys = seeded_database
    shutil.copy(seed, tmp_path / "inflow.db")
    shutil.copytree(seed.parent / "index", index_dir, dirs_exist_ok=True)
    app = build_app(f"sqlite:///{tmp_path / 'inflow.db'}", INFLOW_APP_KEY=fake_host.app_key,
                    INFLOW_AUTH_SERVER_URL=fake_host.url)
    db: Database = app.extensions["inflow.db"]
    fake_host.load_jira_issues(activemq_issues)
    tenant = adopt_fake_host(db, fake_host)
    yield Site(app, app.test_client(), db, fake_host, tenant, keys)
    db.dispose()
    for cache in (CACHE, PROFILES, BACKOFF):
        cache.clear()


def install_wiki(site: Site, names: bool = True) -> Site:
    """The same fake host installed as a Confluence tenant that learned 60 Hyperledger pages.

    Pages carry account ids only; `names=False` leaves Inflow without anyone's display name,
    as a real Confluence backfill does, so panels must ask the host.
    """
    pages = data.confluence_pages()[:60]
    site.host.load_confluence_pages(pages)
    install_tenant(site.db, "confluence", base_url="https://seed.atlassian.net/wiki")
    tenant = adopt_fake_host(site.db, site.host, "confluence")
    spaces = {s["id"]: s["key"] for s in data.confluence_spaces()}
    with site.db.session() as session:
        for page in pages:
            upsert_item(session, tenant.tenant_id, confluence_page_to_doc(
                page, tenant.base_url, space_key=spaces.get(page.get("spaceId"))))
        if names:
            remember_people(session, tenant.tenant_id,
                            [(u["accountId"], u["displayName"]) for u in data.confluence_users()])
    assert search.catch_up(site.db)
    site.tenant = tenant
    site.keys = [str(p["id"]) for p in pages]
    return site


@pytest.fixture
def wiki(site: Site) -> Site:
    """A Confluence tenant whose people Inflow knows by name."""
    return install_wiki(site)
