"""Replays Jira history through the app's ingestion and ranking, asking each query in its moment.

Issues enter at their creation time without comments, resolution or assignee; comments arrive
at their own times and the resolution (with the assignee) at the resolution date. Each query is
asked just before its issue is created, so only what existed then can be used. Changes between
two queries are applied in one transaction, each touched issue once in its latest state.
"""
from __future__ import annotations

import copy
import dataclasses
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from connect.db import Database
from connect.models import Tenant
from plugin import search
from plugin.config import DEFAULT_SHARD, Settings
from plugin.content.normalize import jira_issue_to_doc
from plugin.evaluation.history import Event, apply, at_creation, events
from plugin.matching.store import store_items

SITE = "https://replay.invalid"
Ask = Callable[[Session, int, dict[str, Any]], None]


@contextmanager
def replay_database() -> Iterator[tuple[Database, int]]:
    """A throwaway SQLite database and search index with every table and one Jira tenant."""
    import plugin.models  # noqa: F401  (registers every table)

    with tempfile.TemporaryDirectory(prefix="inflow-eval-") as folder:
        db = Database(f"sqlite:///{Path(folder) / 'replay.db'}")
        search.bind(db, dataclasses.replace(Settings.from_env(), index_dir=Path(folder) / "index",
                                            shards=(DEFAULT_SHARD,)))
        db.create_all()
        with db.session() as session:
            tenant = Tenant(client_key="replay", shared_secret="replay", base_url=SITE,
                            product_type="jira")
            session.add(tenant)
            session.flush()
            tenant_id = tenant.id
        try:
            yield db, tenant_id
        finally:
            db.dispose()


def replay(issues: list[dict[str, Any]], queries: set[str], ask: Ask) -> None:
    """Feed the history into a fresh database, calling `ask` at each query issue's creation."""
    by_key = {issue["key"]: issue for issue in issues}
    state: dict[str, dict[str, Any]] = {}
    dirty: set[str] = set()
    with replay_database() as (db, tenant_id), search.writing(db) as sync:
        for event in events(issues):
            if event.kind == 0 and event.key in queries:
                _flush(db, tenant_id, state, dirty)
                sync()  # the engine sees exactly what the database holds now
                with db.session() as session:
                    ask(session, tenant_id, at_creation(by_key[event.key]))
            _advance(state, by_key, event)
            dirty.add(event.key)
        _flush(db, tenant_id, state, dirty)


def _advance(state: dict[str, dict[str, Any]], by_key: dict[str, dict[str, Any]], event: Event) -> None:
    if event.kind == 0:
        state[event.key] = copy.deepcopy(at_creation(by_key[event.key]))
    elif event.key in state:
        apply(state[event.key], by_key[event.key], event)


def _flush(db: Database, tenant_id: int, state: dict[str, dict[str, Any]], dirty: set[str]) -> None:
    if not dirty:
        return
    docs = [jira_issue_to_doc(state[key], SITE) for key in sorted(dirty) if key in state]
    with db.session() as session:
        for start in range(0, len(docs), 500):
            store_items(session, tenant_id, docs[start:start + 500])
    dirty.clear()
