"""The URL people open a site at, for the links Inflow stores with each item.

A Forge installation first known from a trigger (installed, an event) has only Forge's API
gateway URL until a page view brings the site's own; links built on the gateway are dead for
people. Such a site is asked for its URL once, and the answer kept.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.orm import Session

from connect.host_client import HostError
from connect.models import Tenant
from plugin.pipeline.fetch import Requester

log = logging.getLogger(__name__)

GATEWAY = "https://api.atlassian.com/"
# Where each product says its URL: Jira's server info, Confluence's system info.
ASK = {"jira": "/rest/api/3/serverInfo", "confluence": "/wiki/rest/api/settings/systemInfo"}


def site_url(session: Session, tenant: Tenant, client: Callable[[], Requester]) -> str:
    """The site's URL for links: the one known, else asked of the site through `client()` (and
    kept) when Inflow knows only the API gateway."""
    known = (tenant.display_url or tenant.base_url or "").rstrip("/")
    if not _gateway_only(tenant):
        return known
    learned = _ask(client(), tenant.product_type)
    if learned is None:
        return known
    session.execute(update(Tenant).where(Tenant.id == tenant.id, Tenant.display_url.is_(None))
                    .values(display_url=learned))
    tenant.display_url = learned
    return learned


def _gateway_only(tenant: Tenant) -> bool:
    """Whether the only URL known is the API gateway's (Forge's `apiBaseUrl`)."""
    base = (tenant.base_url or "").rstrip("/")
    gateway = (tenant.forge_api_base_url or "").rstrip("/")
    return not tenant.display_url and (base.startswith(GATEWAY.rstrip("/")) or bool(gateway) and base == gateway)


def _ask(client: Requester, product: str) -> str | None:
    try:
        found = client.request("GET", ASK.get(product, ASK["jira"])).json().get("baseUrl")
    except (HostError, ValueError, AttributeError) as exc:  # links wait for a page view's URL
        log.warning("the site's URL could not be read: %s", exc)
        return None
    if not isinstance(found, str) or not found.startswith(("https://", "http://")) or found.startswith(GATEWAY):
        return None  # not a URL people can open
    found = found.rstrip("/")
    return found[: -len("/wiki")] if found.endswith("/wiki") else found
