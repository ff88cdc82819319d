"""index progress site: the key a tenant's search documents share with its site's other product

The Jira and the Confluence installation of one site are indexed under one key (the smaller of
their tenant ids) so that each finds the other's content. Existing rows get none: their
shards are rebuilt anyway (the documents' schema changed with it), which sets it.

Revision ID: c41f7a2e9d08
Revises: b7e4d2a9c1f3
Create Date: 2026-12-04 23:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c41f7a2e9d08'
down_revision: str | Sequence[str] | None = 'b7e4d2a9c1f3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('index_progress', sa.Column('site', sa.Integer(), nullable=True))
    op.create_index('ix_index_progress_site', 'index_progress', ['site'])


def downgrade() -> None:
    op.drop_index('ix_index_progress_site', table_name='index_progress')
    with op.batch_alter_table('index_progress') as batch:
        batch.drop_column('site')
