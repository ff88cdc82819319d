"""people active: whether the host shows each account as active

A deactivated account (someone who left) is never suggested as an expert. The host says so in
every user object it sends (`active`); None until one was seen, which counts as active.

Revision ID: e2b9f4c7a1d6
Revises: d5a8c3e1f9b4
Create Date: 2026-12-06 05:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e2b9f4c7a1d6'
down_revision: str | Sequence[str] | None = 'd5a8c3e1f9b4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('people', sa.Column('active', sa.Boolean(), nullable=True))
    op.create_index('ix_people_inactive', 'people', ['tenant_id'], unique=False,
                    sqlite_where=sa.text('active = 0'), postgresql_where=sa.text('active = false'))


def downgrade() -> None:
    op.drop_index('ix_people_inactive', table_name='people')
    with op.batch_alter_table('people') as batch:
        batch.drop_column('active')
