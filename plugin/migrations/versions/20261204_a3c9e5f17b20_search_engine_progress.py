"""search engine progress: where each site's documents live and how far they follow

The in-process per-tenant indexes (and the snapshots that fed them) gave way to Tantivy shards
derived from the database (`plugin.search`). `index_progress` records, per site, the shard that
holds its documents, the identity of that shard's index and the change sequence it has applied;
an unknown identity means the site is indexed there from scratch, so a lost index rebuilds
itself. The snapshots table goes: nothing reads it.

Revision ID: a3c9e5f17b20
Revises: 842b01e0df27
Create Date: 2026-12-04 22:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connect.db

revision: str = 'a3c9e5f17b20'
down_revision: str | Sequence[str] | None = '842b01e0df27'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('index_progress',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('shard', sa.String(length=32), nullable=False),
    sa.Column('index_id', sa.String(length=32), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', connect.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id')
    )
    op.drop_table('index_snapshots')


def downgrade() -> None:
    op.create_table('index_snapshots',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('format', sa.Integer(), nullable=False),
    sa.Column('blob', sa.LargeBinary(), nullable=False),
    sa.Column('saved_at', connect.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id')
    )
    op.drop_table('index_progress')
