"""forge refusals: when a Forge site started refusing the app's product calls, and how often

Forge sends no uninstall event. A Forge tenant whose product calls are refused (401/403/404) on
every check for a day is marked uninstalled, and then purged like a Connect uninstall.

Revision ID: b7e4d2a9c1f3
Revises: a3c9e5f17b20
Create Date: 2026-12-10 10:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connect.db

revision: str = 'b7e4d2a9c1f3'
down_revision: str | Sequence[str] | None = 'a3c9e5f17b20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not batch mode: rebuilding `tenants` on SQLite would cascade-delete the rows
# that reference it. SQLite 3.35+ drops columns in place.
def upgrade() -> None:
    op.add_column('tenants', sa.Column('forge_refused_since',
                                       connect.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column('tenants', sa.Column('forge_refusals', sa.Integer(), server_default='0',
                                       nullable=False))


def downgrade() -> None:
    op.drop_column('tenants', 'forge_refusals')
    op.drop_column('tenants', 'forge_refused_since')
