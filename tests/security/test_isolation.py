"""Tenant isolation, as a property: whatever tenants do, no response shows another tenant's data.

Two tenants, each on its own fake Atlassian site, with distinctive random tokens in their project
keys, account ids, issue text, kudos messages and settings. Hypothesis runs random operations
by random tenants through the HTTP API (webhook ingest processed by the pipeline, panels, ask,
feedback on any item id (ours or theirs), kudos, settings and their people's names, preferences,
export) and every response body is searched for the other tenant's tokens.
"""
from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from connect.db import Database
from connect.models import WebhookEvent
from plugin.models.content import Item
from plugin.pipeline import events
from plugin.services.permissions import CACHE
from sandbox.site import data
from sandbox.site.server import FakeHost
from tests.conftest import TenantAuth, build_app
from tests.sandbox_site import install_into


@dataclass
class Tenant:
    """One tenant's site, credentials and the tokens that must never reach anyone else."""

    name: str
    host: FakeHost
    auth: TenantAuth
    project: str
    token: str
    accounts: list[str]
    issues: list[dict[str, Any]] = field(default_factory=list)
    ingested: int = 0

    def secrets_(self) -> list[str]:
        return [self.project, self.token, self.auth.client_key, *self.accounts,
                self.host.url]


def _rewrite(issue: dict[str, Any], n: int, t: Tenant) -> dict[str, Any]:
    """A real issue moved into this tenant: its project, its people, its token in the text."""
    issue = copy.deepcopy(issue)
    issue["key"], issue["id"] = f"{t.project}-{n}", str(90000 + n)
    fields = issue["fields"]
    fields["project"] = {"key": t.project, "name": t.project}
    fields["summary"] = f"{fields['summary']} {t.token}"
    people = [fields.get(r) for r in ("reporter", "creator", "assignee")]
    people += [c.get("author") for c in fields.get("comment", {}).get("comments", [])]
    for n_person, person in enumerate(p for p in people if p):
        account = t.accounts[n_person % len(t.accounts)]
        person.update(accountId=account, name=account, key=account, displayName=account)
    return issue


def _tenant(name: str, db: Database, source: list[dict[str, Any]]) -> Tenant:
    host = FakeHost().start()
    token = f"tok{secrets.token_hex(6)}"
    t = Tenant(name, host, install_into(host, db, "jira"), f"P{secrets.token_hex(3).upper()}",
               token, [f"acc-{token}-{i}" for i in range(3)])
    t.issues = [_rewrite(issue, n, t) for n, issue in enumerate(source, start=1)]
    host.load_jira_issues(t.issues)
    host.set_project_admin(t.accounts[0], t.project)
    return t


class World(tuple):
    """(app, db, tenants), with a short repr for hypothesis' failure reports."""

    def __repr__(self) -> str:
        return "World(app, db, tenants)"


@pytest.fixture
def world(tmp_path: Path, fake_host: FakeHost) -> Iterator[tuple[Any, Database, list[Tenant]]]:
    CACHE.clear()
    app = build_app(f"sqlite:///{tmp_path / 'inflow.db'}", INFLOW_APP_KEY=fake_host.app_key)
    db: Database = app.extensions["inflow.db"]
    source = data.jira_dataset("apache-zookeeper")[:12]
    tenants = [_tenant("a", db, source), _tenant("b", db, source)]
    # One OAuth server per app: tenant a's site, so a's people can ask (b's asks get 502).
    app.config["INFLOW_AUTH_SERVER_URL"] = tenants[0].host.url
    yield World((app, db, tenants))
    for t in tenants:
        t.host.stop()
    db.dispose()
    CACHE.clear()


def ingest(client: Any, db: Database, t: Tenant) -> Any:
    """Deliver the tenant's next issue as a webhook and process it through the pipeline."""
    issue = t.issues[t.ingested % len(t.issues)]
    t.ingested += 1
    path = "/webhooks/jira/issue_updated"
    response = client.post(path, json={"webhookEvent": "jira:issue_updated", "issue": issue},
                           headers=t.auth.headers("POST", path, sub=None))
    with db.session() as session:
        pending = session.scalars(select(WebhookEvent.id).where(
            WebhookEvent.processed_at.is_(None))).all()
    for event_id in pending:
        with db.session() as session:
            events.process_event(session, event_id, lambda tenant: None)
    return response


def operation(client: Any, db: Database, t: Tenant, op: str, n: int) -> Any:
    """One API call by one of the tenant's people."""
    viewer = t.accounts[n % len(t.accounts)]
    key = t.issues[n % len(t.issues)]["key"]
    headers = t.auth.context_headers(sub=viewer)
    post = lambda path, body: client.post(path, json=body, headers=headers)  # noqa: E731
    if op == "ingest":
        return ingest(client, db, t)
    if op == "panel":
        panel = ("experts", "reuse", "contributors")[n % 3]
        return client.get(f"/api/content/jira/{key}/{panel}", headers=headers)
    if op == "ask":
        return post("/api/questions", {"source": "jira", "key": key, "text": f"Help {t.token}?",
                                       "expert_account_id": t.accounts[(n + 1) % 3]})
    if op == "feedback":  # any item id at all, this tenant's or another's
        return post("/api/feedback", {"source": "jira", "key": key, "target_item_id": n + 1,
                                      "verdict": "helped"})
    if op == "kudos":
        return post("/api/kudos", {"source": "jira", "key": key, "message": f"ta {t.token}",
                                   "to_account_id": t.accounts[(n + 1) % 3]})
    if op == "settings":
        admin = t.auth.context_headers(sub=t.accounts[0])
        return client.post(f"/api/admin/projects/{t.project}/settings", headers=admin,
                           json={"purpose": f"Purpose {t.token}", "exclude_people": [viewer]})
    if op == "preferences":
        return post("/api/me/preferences", {"opted_out": bool(n % 2), "pause_days": n % 3})
    if op in ("dashboard", "people"):
        return client.get(f"/api/admin/projects/{t.project}/{op}",
                          headers=t.auth.context_headers(sub=t.accounts[0]))
    path = {"export": "/api/me/export", "me": "/api/me"}[op]
    return client.get(path, headers=headers)


OPS = st.sampled_from(["ingest", "ingest", "panel", "ask", "feedback", "kudos", "settings",
                       "preferences", "dashboard", "people", "export", "me"])
STEPS = st.lists(st.tuples(st.integers(0, 1), OPS, st.integers(0, 30)), min_size=1, max_size=8)


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
def test_no_response_ever_contains_another_tenants_data(
        world: tuple[Any, Database, list[Tenant]], steps: list[tuple[int, str, int]]) -> None:
    app, db, tenants = world
    client = app.test_client()
    for who, op, n in steps:
        t, others = tenants[who], [o for o in tenants if o is not tenants[who]]
        response = operation(client, db, t, op, n)
        body = response.get_data(as_text=True)
        assert response.status_code < 500 or op == "ask", f"{op} -> {response.status_code}"
        for other in others:
            leaked = [s for s in other.secrets_() if s in body]
            assert not leaked, f"{t.name} {op} saw {other.name}'s {leaked}: {body[:300]}"


def test_both_tenants_really_have_data_to_leak(world: tuple[Any, Database, list[Tenant]]) -> None:
    app, db, tenants = world
    client = app.test_client()
    for t in tenants:
        for _ in range(3):
            assert ingest(client, db, t).status_code == 202
    with db.session() as session:
        owners = session.execute(select(Item.tenant_id, Item.title)).all()
    for t in tenants:
        assert sum(1 for tenant_id, title in owners
                   if tenant_id == t.auth.tenant_id and t.token in title) == 3
        body = client.get(f"/api/content/jira/{t.issues[0]['key']}/contributors",
                          headers=t.auth.context_headers(sub=t.accounts[0])).get_data(as_text=True)
        assert any(a in body for a in t.accounts)
