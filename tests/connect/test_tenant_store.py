"""The tenant store contract, run on SQLite and PostgreSQL."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from connect import tenants
from connect.db import Database
from connect.models import Tenant
from tests.connect.conftest import install_payload


@pytest.fixture
def store(database_url: str) -> Iterator[Database]:
    import plugin.models  # noqa: F401  (every table, as the app has them)

    database = Database(database_url)
    database.create_all()
    yield database
    database.dispose()


def test_upsert_installed_creates_then_updates_one_row(store: Database) -> None:
    with store.session() as session:
        created = tenants.upsert_installed(session, install_payload("ck-1", "secret-one-" * 3))
        tenant_id = created.id
    with store.session() as session:
        updated = tenants.upsert_installed(
            session, install_payload("ck-1", "secret-two-" * 3, baseUrl="https://ck-1.jira.com/"))
        assert updated.id == tenant_id
    with store.session() as session:
        tenant = tenants.get_by_client_key(session, "ck-1")
        assert tenant.shared_secret == "secret-two-" * 3
        assert tenant.base_url == "https://ck-1.jira.com"
        assert session.scalar(select(func.count()).select_from(Tenant)) == 1


def test_optional_install_fields_are_kept_when_a_reinstall_omits_them(store: Database) -> None:
    with store.session() as session:
        tenants.upsert_installed(session, install_payload("ck-2"))
    with store.session() as session:
        tenants.upsert_installed(session, install_payload("ck-2", oauthClientId=None,
                                                          cloudId=None, displayUrl=None))
    with store.session() as session:
        tenant = tenants.get_by_client_key(session, "ck-2")
        assert tenant.oauth_client_id == "oauth-ck-2" and tenant.cloud_id == "cloud-ck-2"
        assert tenant.display_url is None


def test_mark_uninstalled_keeps_the_row_and_reinstall_revives_it(store: Database) -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    with store.session() as session:
        tenants.upsert_installed(session, install_payload("ck-3"))
    with store.session() as session:
        tenants.set_enabled(session, tenants.get_by_client_key(session, "ck-3").id, False)
        tenants.mark_uninstalled(session, "ck-3", now=at)
    with store.session() as session:
        tenant = tenants.get_by_client_key(session, "ck-3")
        assert not tenant.installed and tenant.uninstalled_at == at
        tenants.upsert_installed(session, install_payload("ck-3"))
    with store.session() as session:
        tenant = tenants.get_by_client_key(session, "ck-3")
        assert tenant.installed and tenant.enabled and tenant.uninstalled_at is None


def test_unknown_client_keys_are_none_and_change_nothing(store: Database) -> None:
    with store.session() as session:
        assert tenants.get_by_client_key(session, "nobody") is None
        assert tenants.mark_uninstalled(session, "nobody") is None
        assert tenants.set_enabled(session, 424242, True) is None
        assert session.scalar(select(func.count()).select_from(Tenant)) == 0


def test_set_enabled_flips_only_that_tenant(store: Database) -> None:
    with store.session() as session:
        a = tenants.upsert_installed(session, install_payload("ck-a")).id
        tenants.upsert_installed(session, install_payload("ck-b"))
    with store.session() as session:
        tenants.set_enabled(session, a, False)
    with store.session() as session:
        assert tenants.get_by_client_key(session, "ck-a").enabled is False
        assert tenants.get_by_client_key(session, "ck-b").enabled is True
