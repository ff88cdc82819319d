"""Bulk writes stay fast as tables grow: current planner statistics, lookups by index, no rescans."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from plugin.matching.store import BULK_PAGE, refresh_statistics, store_items
from tests.conftest import make_postgres_database, require_postgres
from tests.matching.helpers import database, doc


def _analysed(db) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.scalars(text("SELECT relname FROM pg_stat_user_tables "
                                     "WHERE last_analyze IS NOT NULL")))


def _page(start: int, count: int) -> list:
    return [doc(f"APP-{i}", f"Issue {i}", "text", people={f"u{i % 40}": "reporter", f"a{i % 7}": "assignee"})
            for i in range(start, start + count)]


@pytest.fixture
def young_pg():
    """A fresh PostgreSQL database (tables never analysed) with a tenant."""
    require_postgres()
    url, drop = make_postgres_database()
    db, tenant = database(url)
    yield db, tenant
    db.dispose()
    drop()


def _flush_counts(s) -> None:
    """This backend's row counts reach the statistics views when it next goes idle."""
    s.execute(text("SELECT pg_stat_force_next_flush()"))


@pytest.mark.postgres
def test_a_bulk_page_analyses_tables_it_has_outgrown(young_pg) -> None:
    db, tenant = young_pg
    with db.session() as s:  # 1,500 items, 3,000 contributions
        store_items(s, tenant, _page(0, 1500))
        _flush_counts(s)
    assert _analysed(db) == set()
    with db.session() as s:  # the next bulk page finds them outgrown and analyses them
        store_items(s, tenant, _page(1500, BULK_PAGE))
    assert _analysed(db) == {"items", "contributions"}  # 40 + 7 people: too few to matter
    with db.session() as s:
        assert refresh_statistics(s) == []  # current now: nothing to do
        plan = "\n".join(s.execute(text(
            "EXPLAIN DELETE FROM contributions WHERE item_id = ANY(:ids)"),
            {"ids": list(range(1, 501))}).scalars())
    assert "ix_contributions_item" in plan and "Seq Scan" not in plan


def test_small_writes_and_sqlite_never_analyse(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    with db.session() as s:
        store_items(s, tenant, _page(0, 200))
        assert refresh_statistics(s) == []  # SQLite's planner prefers indexes without statistics
    db.dispose()


def test_filling_suggestions_walks_on_from_the_last_batch(database_url: str) -> None:
    from plugin.matching.precompute import refresh_suggestions
    from plugin.pipeline.backfill import fill_suggestions, items_without_suggestions

    db, tenant = database(database_url)
    with db.session() as s:
        ids = store_items(s, tenant, _page(0, 30))
        for item_id in ids[:10]:
            refresh_suggestions(s, tenant, item_id)
    with db.session() as s:
        assert items_without_suggestions(s, tenant, 5) == ids[10:15]
        assert items_without_suggestions(s, tenant, 5, after=ids[20]) == ids[21:26]
    assert fill_suggestions(db, tenant, batch=7) == 20
    with db.session() as s:
        assert items_without_suggestions(s, tenant, 100) == []
    db.dispose()


@pytest.mark.postgres
def test_long_texts_are_compressed_with_lz4_when_the_server_has_it(young_pg) -> None:
    db, tenant = young_pg
    with db.engine.connect() as conn:
        offered = conn.scalar(text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"))
        if "lz4" not in (offered or []):
            pytest.skip("this PostgreSQL was built without lz4")
        assert conn.scalar(text("SHOW default_toast_compression")) == "lz4"
    long_text = " ".join(f"word{i} lorem ipsum dolor" for i in range(2000))  # well past TOAST's 2 kB
    with db.session() as s:
        store_items(s, tenant, [doc("APP-1", "Long", long_text)])
    with db.engine.connect() as conn:
        assert conn.scalar(text("SELECT pg_column_compression(text) FROM items")) == "lz4"


def test_filling_suggestions_leaves_the_write_lock_free_between_items(sqlite_url: str,
                                                                     monkeypatch) -> None:
    """A panel's write must not wait behind a whole batch of rankings (SQLite has one writer)."""
    import sqlite3

    from sqlalchemy.engine import make_url

    from plugin.matching import precompute
    from plugin.pipeline.backfill import fill_suggestions

    db, tenant = database(sqlite_url)
    with db.session() as s:
        store_items(s, tenant, _page(0, 12))
    path = make_url(db.url).database
    free: list[bool] = []
    real = precompute.refresh_suggestions

    def refresh_after_probe(session, tenant_id: int, item_id: int):
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once while another transaction writes
            other.execute("ROLLBACK")
            free.append(True)
        except sqlite3.OperationalError:
            free.append(False)
        finally:
            other.close()
        return real(session, tenant_id, item_id)

    monkeypatch.setattr(precompute, "refresh_suggestions", refresh_after_probe)
    assert fill_suggestions(db, tenant, batch=5) == 12
    assert free == [True] * 12
    db.dispose()
