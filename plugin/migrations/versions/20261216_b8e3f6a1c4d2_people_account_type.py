"""people account type: whether an account is a person's, an app's or a portal customer's

Confluence names accounts by id only; an app's account (an integration, an automation) must not
be credited or suggested, as Jira's payloads already let Inflow see. Learned from the host's bulk
user lookup; None until asked.

Revision ID: b8e3f6a1c4d2
Revises: a7d2e5c9b3f1
Create Date: 2026-12-06 16:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b8e3f6a1c4d2'
down_revision: str | Sequence[str] | None = 'a7d2e5c9b3f1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('people', sa.Column('account_type', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.drop_column('account_type')
