"""erasures: who erased their data, and when, so a re-read never learns their past work again

Revision ID: a7d2e5c9b3f1
Revises: f3c1a8d2e7b5
Create Date: 2026-12-06 08:30:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import connect.db

revision: str = 'a7d2e5c9b3f1'
down_revision: str | Sequence[str] | None = 'f3c1a8d2e7b5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'erasures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.String(length=255), nullable=False),
        sa.Column('erased_at', connect.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant_id', 'account_id', name='uq_erasures_tenant_account'),
    )


def downgrade() -> None:
    op.drop_table('erasures')
