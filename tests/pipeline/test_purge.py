"""Uninstalled tenants are purged after the configured time; a re-install keeps the data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from connect import tenants
from connect.db import Base, utcnow
from connect.models import Tenant
from jobs import pipeline as jobs
from plugin.pipeline import backfill
from tests.conftest import install_tenant
from tests.pipeline.conftest import Site


def rows_of(site: Site, tenant_id: int) -> int:
    with site.db.session() as session:
        return sum(
            session.scalar(
                select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)
            )
            for table in Base.metadata.sorted_tables
            if "tenant_id" in table.c
        )


def test_tenants_are_purged_after_purge_after_days_unless_reinstalled(
    database_url: str, make_site: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("INFLOW_PURGE_AFTER_DAYS", "30")
    site = make_site(database_url)
    site.host.load_jira_dataset("apache-zookeeper", limit=50)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    recent = install_tenant(site.db, "jira")
    returned = install_tenant(site.db, "jira")
    with site.db.session() as session:
        tenants.mark_uninstalled(session, site.auth.client_key, now=utcnow() - timedelta(days=31))
        tenants.mark_uninstalled(session, recent.client_key, now=utcnow() - timedelta(days=29))
        tenants.mark_uninstalled(session, returned.client_key, now=utcnow() - timedelta(days=40))
        session.get(Tenant, returned.tenant_id).installed = True  # re-installed since
        session.get(Tenant, returned.tenant_id).uninstalled_at = None
    assert rows_of(site, site.tenant_id) > 50

    assert jobs.purge_uninstalled_tenants() == [site.tenant_id]
    assert rows_of(site, site.tenant_id) == 0
    with site.db.session() as session:
        assert session.get(Tenant, site.tenant_id) is None
        assert {t.id for t in session.scalars(select(Tenant))} == {
            recent.tenant_id,
            returned.tenant_id,
        }
    assert jobs.purge_uninstalled_tenants() == []
