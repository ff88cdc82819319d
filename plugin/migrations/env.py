"""Alembic environment: the models' metadata and the database URL from Settings."""
from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import make_url

import plugin.models  # noqa: F401  (registers every table on Base.metadata)
from connect.db import Base, make_engine, normalise_url
from plugin.config import Settings

config = context.config


def database_url() -> str:
    """The URL `inflow migrate` passed in, else the environment's DATABASE_URL."""
    url = config.attributes.get("database_url") or Settings.from_env().database_url
    return normalise_url(url)


def configure_options(url: str) -> dict[str, Any]:
    # SQLite cannot ALTER most things in place; batch mode recreates the table instead.
    return {
        "target_metadata": Base.metadata,
        "render_as_batch": make_url(url).get_backend_name() == "sqlite",
        "compare_type": True,
    }


def run_offline() -> None:
    """Emit SQL for the URL without connecting (`alembic upgrade head --sql`)."""
    url = database_url()
    context.configure(url=url, literal_binds=True, **configure_options(url))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate through a live connection."""
    url = database_url()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, **configure_options(url))
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
