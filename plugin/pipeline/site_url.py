"""The URL people open a site at, for the links Inflow stores with each item.

A Forge installation first known from a trigger (installed, an event) has only Forge's API
gateway URL until a page view brings the site's own; links built on the gateway are dead for
people. Such a site is asked for its URL once, and the answer kept.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from connect.host_client import HostError
from connect.models import Tenant
from plugin.pipeline.fetch import Requester

log = logging.getLogger(__name__)

GATEWAY = "https://api.atlassian.com/"
# Where each product says its URL: Jira's server info; any Confluence v2 list's `_links.base`.
# Why not Confluence's system info: it needs manage:confluence-configuration, a site admin's
# scope that Inflow does not ask for, so Forge refused it. Listing one space needs
# read:space:confluence, which the backfill needs anyway.
ASK: dict[str, tuple[str, dict[str, Any] | None, Callable[[Any], Any]]] = {
    "jira": ("/rest/api/3/serverInfo", None, lambda answer: answer.get("baseUrl")),
    "confluence": ("/wiki/api/v2/spaces", {"limit": 1}, lambda answer: answer.get("_links", {}).get("base")),
}


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
        path, params, read = ASK.get(product, ASK["jira"])
        found = read(client.request("GET", path, params=params).json())
    except (HostError, ValueError, AttributeError) as exc:  # links wait for a page view's URL
        log.warning("the site's URL could not be read: %s", exc)
        return None
    if not isinstance(found, str) or not found.startswith(("https://", "http://")) or found.startswith(GATEWAY):
        return None  # not a URL people can open
    found = found.rstrip("/")
    return found[: -len("/wiki")] if found.endswith("/wiki") else found
