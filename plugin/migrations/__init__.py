"""Alembic migrations of the one metadata (`connect.db.Base`); config built in code."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(database_url: str | None = None) -> Config:
    """Alembic's config for this package; `database_url` overrides the environment's."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (an empty database gets every table)."""
    command.upgrade(alembic_config(database_url), revision)


def has_revisions() -> bool:
    """Whether any migration has been written yet."""
    return any((MIGRATIONS_DIR / "versions").glob("*.py"))
