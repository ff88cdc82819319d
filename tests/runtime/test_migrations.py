"""Alembic: `upgrade head` on an empty database yields exactly the models' schema."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import plugin.models  # noqa: F401  (every table on Base.metadata)
from connect.db import Base, make_engine
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
