"""The tenant store: look up, install, uninstall and enable Connect tenants."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connect.db import utcnow
from connect.models import Tenant


def get_by_client_key(session: Session, client_key: str) -> Tenant | None:
    """The tenant with this client key (installed or not), else None."""
    return session.scalar(select(Tenant).where(Tenant.client_key == client_key))


def get_by_id(session: Session, tenant_id: int) -> Tenant | None:
    """The tenant with this id, else None."""
    return session.get(Tenant, tenant_id)


def upsert_installed(session: Session, payload: Mapping[str, Any]) -> Tenant:
    """Create or update the tenant from a verified `installed` payload (secret may rotate)."""
    tenant = get_by_client_key(session, payload["clientKey"])
    if tenant is None:
        tenant = Tenant(client_key=payload["clientKey"], enabled=True)
        session.add(tenant)
    elif not tenant.installed:
        tenant.enabled = True  # a fresh install after an uninstall starts enabled
    tenant.shared_secret = payload["sharedSecret"]
    tenant.base_url = payload["baseUrl"].rstrip("/")
    tenant.display_url = (payload.get("displayUrl") or "").rstrip("/") or None
    tenant.product_type = payload["productType"]
    tenant.oauth_client_id = payload.get("oauthClientId") or tenant.oauth_client_id
    tenant.cloud_id = payload.get("cloudId") or tenant.cloud_id
    tenant.host = "connect"
    tenant.installed = True
    tenant.uninstalled_at = None
    session.flush()
    return tenant


def mark_uninstalled(session: Session, client_key: str,
                     now: datetime | None = None) -> Tenant | None:
    """Mark the tenant uninstalled (kept for the purge job, never deleted here)."""
    tenant = get_by_client_key(session, client_key)
    if tenant is None:
        return None
    tenant.installed = False
    tenant.uninstalled_at = now or utcnow()
    session.flush()
    return tenant


def set_enabled(session: Session, tenant_id: int, enabled: bool) -> Tenant | None:
    """Record that the host enabled or disabled the app for this tenant."""
    tenant = get_by_id(session, tenant_id)
    if tenant is None:
        return None
    tenant.enabled = enabled
    session.flush()
    return tenant
