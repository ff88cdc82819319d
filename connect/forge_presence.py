"""Whether a Forge installation is still there: Forge sends no uninstall event.

Atlassian's advice: product calls that answer 4xx for the app, or a scheduled trigger that stops
arriving, mean the app was uninstalled. Each check asks the site one cheap question as the app.
A tenant refused (401/403/404, or left without any valid system token because no Forge call came
for hours) on every check for a day, and at least three checks in a row, is marked uninstalled,
exactly as a Connect `uninstalled` callback marks it; the purge job deletes its data
`INFLOW_PURGE_AFTER_DAYS` later. Any verified Forge call before then revives it
(`connect.forge.refresh_tenant`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connect.db import utcnow
from connect.host_client import HostClient, HostError
from connect.models import Tenant
from connect.tenants import mark_uninstalled

log = logging.getLogger(__name__)

REFUSED = frozenset({401, 403, 404})
INFER_AFTER = timedelta(hours=24)
MIN_REFUSALS = 3
PROBES = {"jira": ("/rest/api/3/project/search", {"maxResults": 1}),
          "confluence": ("/wiki/api/v2/pages", {"limit": 1})}

ClientFor = Callable[[Tenant], HostClient]


def forge_tenants(session: Session) -> list[int]:
    """Installed tenants that only Forge can reach (their presence is inferred)."""
    return list(session.scalars(select(Tenant.id).where(
        Tenant.host == "forge", Tenant.installed.is_(True))))


def _answer(tenant: Tenant, client_for: ClientFor) -> str:
    """'ok', 'refused' or 'unknown' (the site is down or slow: no evidence either way)."""
    path, params = PROBES.get(tenant.product_type, PROBES["jira"])
    try:
        client_for(tenant).request("GET", path, params=params)
    except HostError as exc:
        if exc.status in REFUSED:
            return "refused"
        if exc.status == 0 and "Forge system token" in str(exc.body):
            return "refused"  # no Forge call for hours: the hourly trigger stopped coming
        return "unknown"
    return "ok"


def check(session: Session, tenant_id: int, client_for: ClientFor,
          now: datetime | None = None) -> str:
    """Probe one tenant and record the answer; 'uninstalled' when refusals were consistent."""
    now = now or utcnow()
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or not tenant.installed or tenant.host != "forge":
        return "skipped"
    answer = _answer(tenant, client_for)
    if answer == "ok":
        tenant.forge_refused_since, tenant.forge_refusals = None, 0
    elif answer == "refused":
        answer = _refused(session, tenant, now)
    session.flush()
    return answer


def _refused(session: Session, tenant: Tenant, now: datetime) -> str:
    tenant.forge_refused_since = tenant.forge_refused_since or now
    tenant.forge_refusals = (tenant.forge_refusals or 0) + 1
    if tenant.forge_refusals >= MIN_REFUSALS and now - tenant.forge_refused_since >= INFER_AFTER:
        log.info("tenant %s: product calls refused since %s (%d checks); marked uninstalled",
                 tenant.id, tenant.forge_refused_since.isoformat(), tenant.forge_refusals)
        mark_uninstalled(session, tenant.client_key, now)
        return "uninstalled"
    return "refused"


def check_all(db: Any, client_for: ClientFor, now: datetime | None = None) -> dict[str, int]:
    """Check every Forge tenant, each in its own transaction; counts by answer."""
    with db.session() as session:
        ids = forge_tenants(session)
    outcome: dict[str, int] = {}
    for tenant_id in ids:
        try:
            with db.session() as session:
                answer = check(session, tenant_id, client_for, now)
        except Exception:  # one site's fault (its stored token, say) must not stop the others' checks
            log.exception("tenant %s: presence check failed", tenant_id)
            answer = "failed"
        outcome[answer] = outcome.get(answer, 0) + 1
    return outcome
