"""Sites: the Jira and the Confluence installation of one Atlassian site, searched as one corpus.

The two installations are separate tenants (their own keys, tokens and permissions), but their
content answers each other's questions: a runbook page solves an issue, issues are what a page
is about. In the search engine both are indexed under one site key, the smaller of the two
tenant ids, so a query from either finds both and ranks them with the site's statistics;
every document still carries its own tenant, and each product's permissions are its own.

Linked: one tenant of each product with the same cloud id, or the same site host. A tenant
whose partner lives in another shard stays on its own (a site moves between shards whole).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from connect.models import Tenant
from plugin.config import DEFAULT_SHARD
from plugin.models.content import IndexProgress

# Hosts many sites are reached through (Forge's product API gateway): never a site's identity.
SHARED_HOSTS = frozenset({"api.atlassian.com"})


def host_of(url: str | None) -> str:
    """A site's host from one of its base URLs (`https://acme.atlassian.net/wiki` -> acme.atlassian.net)."""
    host = (urlsplit(url or "").hostname or "").lower()
    return "" if host in SHARED_HOSTS else host


def _link(cloud_id: str | None, base_url: str | None) -> list[str]:
    """What makes two installations one site: the cloud id, or the site's host."""
    host = host_of(base_url)
    return ([f"cloud:{cloud_id}"] if cloud_id else []) + ([f"host:{host}"] if host else [])


def site_keys(session: Session, tenant_ids: list[int]) -> dict[int, int]:
    """The key each tenant's documents are indexed under: the smaller tenant id of its site's two
    products (the earliest tenant of the other product), when both live in one shard."""
    rows = session.execute(select(Tenant.id, Tenant.product_type, Tenant.cloud_id, Tenant.base_url,
                                  func.coalesce(IndexProgress.shard, DEFAULT_SHARD))
                           .outerjoin(IndexProgress, IndexProgress.tenant_id == Tenant.id)
                           .order_by(Tenant.id)).all()
    first: dict[tuple[str, str], tuple[int, str]] = {}  # (product, link) -> its earliest tenant, shard
    facts = {}
    for tenant_id, product, cloud_id, base_url, shard in rows:
        links = _link(cloud_id, base_url)
        facts[tenant_id] = (product, links, shard)
        for link in links:
            first.setdefault((product, link), (tenant_id, shard))
    keys = {}
    for tenant_id in tenant_ids:
        product, links, shard = facts.get(tenant_id, ("", [], ""))
        other = "confluence" if product == "jira" else "jira"
        found = [first[(other, link)] for link in links if (other, link) in first]
        partner = min(found) if found else None
        keys[tenant_id] = min(tenant_id, partner[0]) if partner and partner[1] == shard else tenant_id
    return keys


def site_key(session: Session, tenant_id: int) -> int:
    """The key one tenant's documents are indexed under (see `site_keys`)."""
    return site_keys(session, [tenant_id])[tenant_id]


def of_site(column: Any, tenant: Any) -> ColumnElement[bool]:
    """SQL: `column` (a tenant id) is the tenant's or another tenant's indexed under its site key
    (`tenant` an id or a bind parameter). The tenant itself counts before it is indexed."""
    site = select(IndexProgress.site).where(IndexProgress.tenant_id == tenant).scalar_subquery()
    return or_(column == tenant,
               column.in_(select(IndexProgress.tenant_id).where(IndexProgress.site == site)))


def partner(session: Session, tenant: Tenant) -> Tenant | None:
    """The installed, enabled installation of the other product on the tenant's site, if any."""
    other = "confluence" if tenant.product_type == "jira" else "jira"
    return next(iter(_same_site(session, tenant, Tenant.product_type == other,
                                Tenant.installed.is_(True), Tenant.enabled.is_(True))), None)


def linked(session: Session, tenant_id: int) -> list[int]:
    """Every installation of the tenant's site, itself included: either product, installed or
    not, indexed yet or not (`of_site` knows a tenant's partner only once both are indexed)."""
    tenant = session.get(Tenant, tenant_id)
    others = _same_site(session, tenant) if tenant is not None else []
    return sorted({tenant_id, *(t.id for t in others)})


def _same_site(session: Session, tenant: Tenant, *conditions: Any) -> list[Tenant]:
    """The other tenants sharing a link with this one (and `conditions`), oldest first."""
    mine = set(_link(tenant.cloud_id, tenant.base_url))
    if not mine:
        return []
    # Narrowed in the database (a panel asks this on every render; a shard holds many sites),
    # then confirmed on the same links `site_keys` uses.
    host = host_of(tenant.base_url)
    same = [Tenant.cloud_id == tenant.cloud_id] if tenant.cloud_id else []
    same += [Tenant.base_url.like(f"{scheme}://{host}%") for scheme in ("https", "http") if host]
    found = session.scalars(select(Tenant).where(Tenant.id != tenant.id, or_(*same), *conditions)
                            .order_by(Tenant.id))
    return [t for t in found if mine & set(_link(t.cloud_id, t.base_url))]
