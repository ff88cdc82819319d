"""A serving process keeps its matching indexes following the database in the background."""
from __future__ import annotations

import threading
import time

import pytest

from connect.db import Database
from plugin.matching.index import tenant_index
from plugin.matching.store import delete_item, upsert_items
from plugin.warmup import follow_seconds, keep_indexes_warm, sync_changed
from tests.conftest import install_tenant
from tests.matching.helpers import database, doc


def _store(db: Database, tenant_id: int, *keys: str) -> None:
    with db.session() as session:
        upsert_items(session, tenant_id, [doc(k, f"disk quota exceeded on {k}") for k in keys])


def test_only_tenants_whose_changes_moved_are_synced(database_url: str) -> None:
    writer, tenant_id = database(database_url)
    other_id = install_tenant(writer, "jira").tenant_id
    _store(writer, tenant_id, "APP-1")
    _store(writer, other_id, "APP-1")
    server = Database(database_url)  # a second engine: another process's view of the database
    seen: dict[int, int] = {}
    try:
        assert sync_changed(server, seen) == 2
        assert sync_changed(server, seen) == 0
        _store(writer, tenant_id, "APP-2")
        assert sync_changed(server, seen) == 1
        with server.session() as session:
            assert tenant_index(session, tenant_id).count == 2
    finally:
        server.dispose()
        writer.dispose()


def test_the_follow_thread_applies_changes_without_a_query(sqlite_url: str) -> None:
    writer, tenant_id = database(sqlite_url)
    _store(writer, tenant_id, "APP-1")
    server = Database(sqlite_url)
    stop = threading.Event()
    thread = threading.Thread(target=keep_indexes_warm, args=(server, stop, 0.05), daemon=True)
    try:
        with server.session() as session:
            index = tenant_index(session, tenant_id)  # held: the thread must move this very object
        thread.start()
        _store(writer, tenant_id, "APP-2", "APP-3")
        with writer.session() as session:
            delete_item(session, tenant_id, "jira", "APP-1")
        deadline = time.monotonic() + 10
        while index.count != 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert index.count == 2
    finally:
        stop.set()
        thread.join(5)
        server.dispose()
        writer.dispose()
    assert not thread.is_alive()


def test_warm_index_off_means_no_following(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLOW_WARM_INDEX", "0")
    writer, _ = database(sqlite_url)
    try:
        started = time.monotonic()
        keep_indexes_warm(writer, threading.Event(), 0.01)  # returns at once instead of looping
        assert time.monotonic() - started < 5
    finally:
        writer.dispose()


@pytest.mark.parametrize(("value", "seconds"), [(None, 2.0), ("0.5", 0.5), ("0", 0.0), ("soon", 2.0),
                                                ("-3", 0.0)])
def test_follow_interval_setting(value: str | None, seconds: float, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("INFLOW_INDEX_FOLLOW_SECONDS", raising=False)
    else:
        monkeypatch.setenv("INFLOW_INDEX_FOLLOW_SECONDS", value)
    assert follow_seconds() == seconds
