"""When index snapshots are written: not while a tenant's items keep changing, once it is still."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from connect.db import Database
from plugin.matching import index
from plugin.matching.store import upsert_items
from plugin.models.content import IndexSnapshot
from plugin.warmup import sync_changed
from tests.matching.helpers import database, doc


def _store(db: Database, tenant_id: int, first: int, count: int) -> None:
    with db.session() as session:
        upsert_items(session, tenant_id, [doc(f"APP-{n}", f"disk quota exceeded on node {n}")
                                          for n in range(first, first + count)])


def _snapshot_items(db: Database, tenant_id: int) -> int | None:
    with db.session() as session:
        return session.scalar(select(IndexSnapshot.items).where(IndexSnapshot.tenant_id == tenant_id))


def test_a_changing_tenant_is_snapshotted_once_it_is_still(database_url: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "SNAPSHOT_AFTER", 3)
    writer, tenant_id = database(database_url)
    server = Database(database_url)  # a serving process following the tenant
    seen: dict[int, int] = {}
    clock = [1000.0]
    monkeypatch.setattr(index.time, "monotonic", lambda: clock[0])
    try:
        _store(writer, tenant_id, 0, 10)
        sync_changed(server, seen)  # a full load is written at once: a fresh process starts from it
        assert _snapshot_items(writer, tenant_id) == 10
        for first in (10, 12):  # a backfill: changes keep arriving, each look applies some
            clock[0] += 2
            _store(writer, tenant_id, first, 2)
            sync_changed(server, seen)
        assert _snapshot_items(writer, tenant_id) == 10  # owed (4 changes), but the tenant is busy
        clock[0] += index.SNAPSHOT_QUIET - 1
        sync_changed(server, seen)
        assert _snapshot_items(writer, tenant_id) == 10
        clock[0] += 1  # still for SNAPSHOT_QUIET seconds: the next look writes it
        sync_changed(server, seen)
        assert _snapshot_items(writer, tenant_id) == 14
    finally:
        server.dispose()
        writer.dispose()


def test_a_tenant_that_never_stops_changing_is_snapshotted_when_half_its_index_is_newer(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "SNAPSHOT_AFTER", 3)
    writer, tenant_id = database(sqlite_url)
    server = Database(sqlite_url)
    seen: dict[int, int] = {}
    clock = [1000.0]
    monkeypatch.setattr(index.time, "monotonic", lambda: clock[0])
    try:
        _store(writer, tenant_id, 0, 10)
        sync_changed(server, seen)
        for first in range(10, 19, 3):
            clock[0] += 1
            _store(writer, tenant_id, first, 3)
            sync_changed(server, seen)
        assert _snapshot_items(writer, tenant_id) == 10  # 9 changes of 19 items: not yet
        clock[0] += 1
        _store(writer, tenant_id, 19, 3)
        sync_changed(server, seen)
        assert _snapshot_items(writer, tenant_id) == 22  # 12 of 22: more than half the index
    finally:
        server.dispose()
        writer.dispose()


def test_queries_do_not_wait_while_a_snapshot_is_encoded(sqlite_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from plugin.matching import snapshot

    monkeypatch.setattr(index, "SNAPSHOT_AFTER", 3)
    writer, tenant_id = database(sqlite_url)
    _store(writer, tenant_id, 0, 5)
    captured: list[index.TenantIndex] = []
    free_while_encoding: list[bool] = []
    real_capture, real_encode = snapshot._capture, snapshot._encode

    def encode(state: object) -> bytes:
        # Another thread (a viewer's query) must be able to take the index lock meanwhile.
        lock = captured[0].lock
        probe = threading.Thread(target=lambda: free_while_encoding.append(lock.acquire(timeout=5)) or lock.release())
        probe.start()
        probe.join()
        return real_encode(state)

    monkeypatch.setattr(snapshot, "_capture", lambda held: captured.append(held) or real_capture(held))
    monkeypatch.setattr(snapshot, "_encode", encode)
    with writer.session() as session:
        index.tenant_index(session, tenant_id)  # a full load: saves its snapshot
    assert free_while_encoding == [True]
    assert _snapshot_items(writer, tenant_id) == 5
    writer.dispose()
