"""Request helpers shared by the iframe pages and the JSON API (the only Flask-aware glue)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import current_app, g
from sqlalchemy.orm import Session

from connect.auth import get_db
from connect.host_client import HostClient, HostError
from plugin.content.model import ItemDoc
from plugin.matching.store import space_of
from plugin.models.content import Item
from plugin.pipeline import fetch as fetch_content
from plugin.search import sites
from plugin.services import permissions
from plugin.services.people import LOOKUP_TIMEOUT, People, host_lookup
from plugin.services.permissions import Expiry, Ref
from plugin.services.settings import eligibility

log = logging.getLogger(__name__)

def host() -> HostClient:
    """A client for the verified tenant's site acting as the app (one per request)."""
    if "inflow_host" not in g:
        g.inflow_host = HostClient.for_tenant(g.tenant, current_app.config["INFLOW_APP_KEY"],
                                              auth_server=current_app.config["INFLOW_AUTH_SERVER_URL"])
    return g.inflow_host


def as_viewer() -> HostClient:
    """A client acting as the signed-in user, for writes the user is the author of."""
    return host().as_user(g.account_id)


def people(session: Session) -> People:
    """Names and avatars for this request; unknown ones asked of the host once, briefly."""
    if "inflow_names_host" not in g:
        client = HostClient.for_tenant(g.tenant, current_app.config["INFLOW_APP_KEY"],
                                       timeout=LOOKUP_TIMEOUT)
        if hasattr(client, "session") and hasattr(client.session, "max_attempts"):
            client.session.max_attempts = 1  # a rate-limited host shows "Unknown user", no wait
        g.inflow_names_host = client
    return People(session, g.tenant.id, host_lookup(g.inflow_names_host, g.tenant.product_type, g.tenant.display_url),
                  watch=g.get("inflow_watch"))


def partner_host() -> HostClient | None:
    """A client for the other product's installation on this site (None when it has none, or no
    way to call it now: a Forge installation whose stored token lapsed until its next call)."""
    if "inflow_partner_host" not in g:
        with current_app.extensions["inflow.db"].session() as session:
            partner = sites.partner(session, g.tenant)
        try:
            g.inflow_partner_host = (HostClient.for_tenant(partner, current_app.config["INFLOW_APP_KEY"])
                                     if partner is not None else None)
        except HostError as exc:  # its items are left out, as without the installation
            log.info("tenant %s: the other product's installation cannot be called: %s", g.tenant.id, exc)
            g.inflow_partner_host = None
    return g.inflow_partner_host


def visible() -> Callable[[list[Item]], list[Item]]:
    """The viewer's permission filter (host checks, cached 60 s; a client only when one is due).

    With Redis, the answers are shared by the app's processes (`permissions.SharedAnswers`).

    Each item is checked by its own product: the site's other installation checks its items, and
    without one they are hidden. A render that may be cached (`g.inflow_watch`) learns when the
    answers it used expire.
    """
    shared, vouched = current_app.extensions.get("inflow.answers"), g.get("inflow_vouched")
    viewed = vouched or g.get("inflow_viewed")  # the item whose panel this is, if it is one item's
    if shared is not None and viewed is not None and g.account_id:
        shared.saw(g.tenant.id, viewed, g.account_id)  # the worker asks ahead for them (jobs.warming)
    return permissions.visible_to(host, g.tenant.id, g.account_id, horizon=g.get("inflow_watch"),
                                  clients=_clients, vouched=vouched, shared=shared)


def visible_for(account_id: str) -> Callable[[list[Any]], list[Any]]:
    """Someone else's permission filter (an expert's), asked as `visible()` asks the viewer's."""
    return permissions.visible_to(host, g.tenant.id, account_id, clients=_clients,
                                  shared=current_app.extensions.get("inflow.answers"))


def answers(horizon: Expiry) -> Callable[[set[Ref]], dict[Ref, bool]]:
    """The viewer's permission answers by item ref, asked as `visible()` asks them."""
    return permissions.answers_to(host, g.tenant.id, g.account_id, horizon=horizon, clients=_clients,
                                  shared=current_app.extensions.get("inflow.answers"))


def _clients(source: str) -> HostClient | None:
    """The client that checks an item of `source`: this installation's, or the other product's."""
    return host() if source == g.tenant.product_type else partner_host()


def eligible(session: Session, project: str | None) -> Callable[[str], bool]:
    """Who may be suggested here: preferences, project rules, groups from the host when needed."""
    watch = g.get("inflow_watch")
    groups = permissions.groups_lookup(host(), g.tenant.id, g.tenant.product_type, horizon=watch)
    return eligibility(session, g.tenant.id, project, groups_of=groups, until=watch)


def site_url() -> str:
    """The site URL people see (display URL when set)."""
    return (g.tenant.display_url or g.tenant.base_url).rstrip("/")


def fetcher(source: str, key: str) -> Callable[[], ItemDoc | None]:
    """Fetch an item Inflow has not indexed yet from the host, so panels work on new issues.

    Read as the pipeline reads it: a page's space by its key, a blog post as a blog post.
    """

    def fetch() -> ItemDoc | None:
        try:
            if source == "jira":
                return fetch_content.jira_issue(host(), key, site_url())
            return (fetch_content.confluence_item(host(), "page", key, site_url())
                    or fetch_content.confluence_item(host(), "blogpost", key, site_url()))
        except HostError as exc:
            if exc.status == 0 or exc.status >= 500:
                raise  # the site is down or unreachable: the page says so rather than "nothing here"
            # A missing or unreadable item is an empty panel, not a broken one.
            log.info("could not fetch %s %s from host: %s", source, key, exc)
            return None

    return fetch


def project_of(source: str, key: str, session: Session | None = None) -> str | None:
    """Whose settings hold for an item: an issue's project (its key's prefix), a page's space as
    Inflow stored it (none for a page not learned yet).

    Never a space the request names: whoever sends it would pick which rules hold.
    """
    if source == "jira":
        return key.rsplit("-", 1)[0] if "-" in key else None
    if session is None:
        with get_db().session() as own:
            return project_of(source, key, own)
    return space_of(session, g.tenant.id, source, key)
