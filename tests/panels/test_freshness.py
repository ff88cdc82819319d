"""Facts read the same on each backend: equal while nothing changed, different after any change."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from connect.db import Database, utcnow
from connect.host_client import HostClient
from connect.models import Tenant
from plugin.matching.precompute import refresh_suggestions
from plugin.matching.store import delete_item, get_item
from plugin.models.content import Item, Person
from plugin.services import feedback, freshness, questions, recognition
from plugin.services.settings import save_project_settings, set_preference
from sandbox.site.server import FakeHost
from tests.conftest import build_app
from tests.panels.conftest import seed_issues
from tests.sandbox_site import install_into


def test_facts_read_alike_and_see_every_change_on_each_backend(
        database_url: str, fake_host: FakeHost, activemq_issues: list[dict[str, Any]]) -> None:
    app = build_app(database_url, INFLOW_APP_KEY=fake_host.app_key,
                    INFLOW_AUTH_SERVER_URL=fake_host.url)
    db: Database = app.extensions["inflow.db"]
    issues = activemq_issues[:40]
    fake_host.load_jira_issues(issues)
    tenant = install_into(fake_host, db)
    keys = seed_issues(db, tenant.tenant_id, tenant.base_url, issues)
    tid, key = tenant.tenant_id, keys[-1]
    with db.session() as session:
        item_id = get_item(session, tid, "jira", key).id
        refresh_suggestions(session, tid, item_id)
        people = dict(session.execute(select(Person.account_id, Person.display_name)
                                      .where(Person.tenant_id == tid)).all())
        rows = session.execute(select(Item.id, Item.source, Item.key, Item.external_id, Item.space)
                               .where(Item.tenant_id == tid).limit(3)).all()
    accounts = tuple(sorted(people)[:3])
    facts = [freshness.ItemState("jira", key), freshness.Stored("jira", key, "reuse"),
             freshness.Stored("jira", key, "experts"), freshness.Settings("AMQ"),
             freshness.Verdicts("jira", key, "aco"), freshness.Questions("jira", key),
             freshness.KudosOn("jira", key), freshness.AllKudos(), freshness.Preferences(),
             freshness.People((*accounts, "nobody-has-this-id")),
             freshness.Items(tuple(r.id for r in rows)), freshness.Impact("jstrachan", 30)]
    engine = db.engine

    def read() -> tuple[Any, ...]:
        return freshness.read(engine, tid, facts)

    first = read()
    assert read() == first
    # What a render records is what the facts read back (same rows, same encoding).
    with db.session() as session:
        stored = session.execute(select(Person.account_id, Person.display_name,
                                        Person.avatar_url).where(
            Person.tenant_id == tid, Person.account_id.in_(accounts))).all()
    assert first[9] == frozenset(freshness.People.row(*row) for row in stored)
    assert first[10] == frozenset(freshness.Items.row(*row) for row in rows)
    with db.session() as session:
        found = recognition.impact(session, tid, "jstrachan", utcnow() - timedelta(days=30))
    assert first[11] == tuple(found.values())

    with db.session() as session:
        client = HostClient.for_tenant(session.get(Tenant, tid), fake_host.app_key,
                                       auth_server=fake_host.url).as_user("aco")
        target = session.scalar(select(Item.id).where(Item.tenant_id == tid, Item.key == keys[0]))
        changes = [
            lambda: session.execute(update(Item).where(Item.id == item_id)
                                    .values(index_seq=Item.index_seq + 1)),
            lambda: refresh_suggestions(session, tid, item_id),
            lambda: save_project_settings(session, tid, "AMQ", {"purpose": "x"}, "admin"),
            lambda: feedback.give(session, tid, source="jira", key=key, project="AMQ",
                                  target_item_id=target, verdict="helped", account_id="aco"),
            lambda: questions.ask(session, tid, source="jira", key=key, project="AMQ",
                                  asker_account_id="aco", expert_account_id="jstrachan",
                                  expert_name="James", text="Why?", client=client,
                                  next_experts=[]),
            lambda: questions.on_comment(session, tid, "jira", key, "jstrachan", utcnow()),
            lambda: recognition.thank(session, tid, source="jira", key=key, space=None,
                                      giver="aco", receiver="jstrachan", message="ta"),
            lambda: set_preference(session, tid, "chirino", True, None),
            lambda: session.execute(update(Person).where(Person.tenant_id == tid,
                                                         Person.account_id == accounts[0])
                                    .values(display_name="Renamed")),
            lambda: delete_item(session, tid, "jira", rows[0].key),
        ]
        seen = first
        for n, change in enumerate(changes):
            change()
            session.flush()
            session.commit()
            now = read()
            assert now != seen, f"change {n} went unseen"
            seen = now
    app.extensions["inflow.db"].dispose()
