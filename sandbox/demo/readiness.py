"""Waiting for the demo: the app answers, the site installs it, the backfills end, panels fill."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

import requests
from sqlalchemy import select

from connect.db import Database
from connect.models import Tenant
from plugin.pipeline.backfill import backfill_status
from sandbox.demo.site_client import SiteClient

POLL = 0.5
Alive = Callable[[], bool]


class NotReady(RuntimeError):
    """A step did not finish in time (or a process of the demo stopped)."""


def wait_for(what: str, check: Callable[[], Any], alive: Alive, timeout: float) -> Any:
    """Poll `check` until it returns something truthy; NotReady after `timeout` or a stop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise NotReady(f"stopped while waiting for {what}")
        result = check()
        if result:
            return result
        time.sleep(POLL)
    raise NotReady(f"{what} took longer than {timeout:.0f} s")


def app_answers(app_url: str) -> bool:
    """The app's /healthz says the database and Redis respond."""
    try:
        return requests.get(f"{app_url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def tenant_ids(db: Database, client_keys: dict[str, str]) -> dict[str, int]:
    """product -> Inflow's tenant id for the sandbox's installs."""
    with db.session() as session:
        rows = session.execute(select(Tenant.client_key, Tenant.id).where(
            Tenant.client_key.in_(list(client_keys.values())))).all()
    ids = dict(rows)
    return {product: ids[key] for product, key in client_keys.items() if key in ids}


def backfills(db: Database, tenants: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Each tenant's backfill status, as the admin page shows it."""
    with db.session() as session:
        return {product: backfill_status(session, tenant_id)
                for product, tenant_id in tenants.items()}


def panel_has(app_url: str, site: SiteClient, key: str, panel: str, field: str,
              viewer: str) -> bool:
    """The panel's JSON (what the iframe shows) lists something under `field`."""
    token = site.token("jira", viewer)
    try:
        response = requests.get(f"{app_url}/api/content/jira/{key}/{panel}", timeout=30,
                                headers={"Authorization": f"JWT {token}"})
    except requests.RequestException:
        return False
    return response.status_code == 200 and bool(response.json().get(field))


def report_backfills(out: TextIO, states: dict[str, dict[str, Any]]) -> None:
    """One progress line: items stored per product."""
    parts = [f"{product} {s['status']} {s['items_done']}"
             + (f"/{s['items_total']}" if s.get("items_total") else "")
             for product, s in states.items()]
    out.write("  backfill: " + ", ".join(parts) + "\n")
    out.flush()
