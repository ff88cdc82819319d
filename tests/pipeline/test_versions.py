"""Item versions: two transactions whose items overlap wait for each other, never deadlock."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import select, text

from plugin.models.pipeline import ItemVersion
from plugin.pipeline.versions import Change, apply_changes
from tests.pipeline.conftest import Site


def wait_for_a_lock_waiter(site: Site) -> None:
    """Until another transaction waits on a row lock (PostgreSQL), or a moment (SQLite)."""
    if site.db.engine.dialect.name != "postgresql":
        time.sleep(0.3)
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with site.db.engine.connect() as conn:
            if conn.execute(text("SELECT count(*) FROM pg_stat_activity "
                                 "WHERE wait_event_type = 'Lock'")).scalar():
                return
        time.sleep(0.02)
    raise AssertionError("the second transaction never waited")


def test_a_new_and_a_stored_item_locked_by_two_transactions_in_turn_never_deadlock(
    database_url: str, make_site: Any
) -> None:
    site = make_site(database_url)
    tenant = site.tenant_id
    with site.db.session() as session:  # AMQ-2 is stored; AMQ-1 is new
        apply_changes(session, tenant, [Change("jira", "AMQ-2", 1)])
    first_holds_new = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:  # creates AMQ-1, then, still open, changes AMQ-2
        with site.db.session() as session:
            apply_changes(session, tenant, [Change("jira", "AMQ-1", 2)])
            first_holds_new.set()
            wait_for_a_lock_waiter(site)
            apply_changes(session, tenant, [Change("jira", "AMQ-2", 2)])

    def second() -> None:  # both items at once, while the first holds AMQ-1
        first_holds_new.wait(10)
        with site.db.session() as session:
            apply_changes(session, tenant, [Change("jira", "AMQ-1", 3), Change("jira", "AMQ-2", 3)])

    def run(work: Any) -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)
            first_holds_new.set()

    threads = [threading.Thread(target=run, args=(work,)) for work in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with site.db.session() as session:
        rows = session.execute(select(ItemVersion.key, ItemVersion.version_ms, ItemVersion.deleted)
                               .where(ItemVersion.tenant_id == tenant)).all()
    assert sorted(rows) == [("AMQ-1", 3, True), ("AMQ-2", 3, True)]
