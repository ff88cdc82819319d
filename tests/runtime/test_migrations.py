"""Alembic: `upgrade head` on an empty database yields exactly the models' schema."""
from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

import plugin.models  # noqa: F401  (every table on Base.metadata)
from connect.db import Base, Database, make_engine
from plugin import migrations


def test_upgrade_head_on_an_empty_database_matches_the_models(database_url: str) -> None:
    migrations.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert differences == []
    assert set(Base.metadata.tables) <= tables


def test_upgrade_head_twice_is_a_no_op(database_url: str) -> None:
    migrations.upgrade(database_url)
    migrations.upgrade(database_url)


def _keys(connection: Connection) -> list[str]:
    return sorted(fk["referred_table"] for fk in inspect(connection).get_foreign_keys("contributions"))


def _tenant_of_that_time(db: Database) -> int:
    """A tenant row as the old schema has it (the models may have columns it lacks yet)."""
    with db.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO tenants (client_key, shared_secret, base_url, product_type, host, enabled,"
            " installed, created_at, updated_at) VALUES ('old-site', 'secret', 'https://old.test',"
            " 'jira', 'connect', true, true, :now, :now)"), {"now": "2026-11-30 00:00:00+00:00"})
        return int(connection.execute(text("SELECT id FROM tenants")).scalar_one())


def _item_of_that_time(connection: Connection, tenant_id: int, key: str, vector: dict) -> int:
    """An item row as an old schema has it; its id."""
    connection.execute(text(
        "INSERT INTO items (tenant_id, source, key, kind, title, labels, components, links, created, updated,"
        " helpful_count, not_relevant_count, index_seq, indexed_at, text, comments_text, terms) VALUES (:tenant,"
        " 'jira', :key, 'issue', 'title', '[]', '[]', '[]', :now, :now, 0, 0, 1, :now, 'text', '', :terms)"),
        {"tenant": tenant_id, "key": key, "now": "2026-11-30 00:00:00+00:00", "terms": json.dumps(vector)})
    return int(connection.execute(text("SELECT id FROM items WHERE key = :key"), {"key": key}).scalar_one())


def test_dropping_the_contributions_keys_keeps_the_rows_and_deletes_still_clean_up(database_url: str) -> None:
    from alembic import command

    from plugin.matching.store import delete_item

    migrations.upgrade(database_url, "6f1bdc47322a")  # the schema before the key was dropped
    db = Database(database_url)
    try:
        tenant_id = _tenant_of_that_time(db)
        with db.engine.begin() as connection:
            for key in ("A-1", "A-2"):
                item_id = _item_of_that_time(connection, tenant_id, key, {"t": {"titl": 1}})
                connection.execute(text("INSERT INTO contributions (tenant_id, item_id, account_id, role, at)"
                                        " VALUES (:tenant, :item, 'ann', 'assignee', :now)"),
                                   {"tenant": tenant_id, "item": item_id, "now": "2026-11-30 00:00:00+00:00"})
        with db.engine.connect() as connection:
            assert _keys(connection) == ["items", "tenants"]
        migrations.upgrade(database_url)
        with db.engine.connect() as connection:
            assert _keys(connection) == []
            assert connection.execute(text("SELECT count(*) FROM contributions")).scalar() == 2
        with db.session() as session:
            assert delete_item(session, tenant_id, "jira", "A-1")
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM contributions")).scalar() == 1
        db.dispose()
        command.downgrade(migrations.alembic_config(database_url), "6f1bdc47322a")
        with db.engine.connect() as connection:
            assert _keys(connection) == ["items", "tenants"]
            assert connection.execute(text("SELECT count(*) FROM contributions")).scalar() == 1
    finally:
        db.dispose()


def test_packing_the_terms_fills_every_stored_item_from_its_json(database_url: str) -> None:
    from plugin.matching.packed import pack

    migrations.upgrade(database_url, "c41f7a2e9d08")  # the schema before items had packed terms
    db = Database(database_url)
    vectors = [{"t": {"disk": 1}, "d": {"full": 2}, "c": {}, "m": {}}, {}]
    try:
        tenant_id = _tenant_of_that_time(db)
        with db.engine.begin() as connection:
            for n, vector in enumerate(vectors):
                _item_of_that_time(connection, tenant_id, f"A-{n}", vector)
        migrations.upgrade(database_url)
        with db.engine.connect() as connection:
            packed = connection.execute(text("SELECT packed_terms FROM items ORDER BY key")).scalars().all()
            if db.engine.dialect.name == "postgresql":  # kept in the row, as a new table has it
                assert _packed_storage(connection) == "m"
        assert [bytes(p) for p in packed] == [pack(v) for v in vectors]
    finally:
        db.dispose()


def test_both_ways_of_making_the_schema_keep_packed_terms_in_the_row_on_postgresql(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL storage setting")
    migrated, created = Database(database_url), Database(database_url)
    try:
        migrations.upgrade(database_url)
        with migrated.engine.begin() as connection:
            assert _packed_storage(connection) == "m"
            connection.execute(text("DROP TABLE items CASCADE"))
        created.create_all()
        with created.engine.connect() as connection:
            assert _packed_storage(connection) == "m"
    finally:
        migrated.dispose()
        created.dispose()


def _packed_storage(connection: Connection) -> str:
    return str(connection.execute(text("SELECT attstorage FROM pg_attribute"
                                       " WHERE attrelid = 'items'::regclass AND attname = 'packed_terms'")).scalar())
