"""items packed terms: each item's term vector packed for ranking, beside its JSON

Ranking reads the vectors of a few hundred candidates per target; parsing their JSON cost more
than the ranking itself (`plugin.matching.packed`). Existing rows are packed here from their
JSON, a page of ids at a time; the store writes both from then on. PostgreSQL keeps them in
the row (`KEEP_PACKED_TERMS_IN_ROW`).

Revision ID: d5a8c3e1f9b4
Revises: c41f7a2e9d08
Create Date: 2026-12-05 09:00:00.000000
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from plugin.matching.packed import pack
from plugin.models.content import KEEP_PACKED_TERMS_IN_ROW

revision: str = 'd5a8c3e1f9b4'
down_revision: str | Sequence[str] | None = 'c41f7a2e9d08'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = 2000


def upgrade() -> None:
    op.add_column('items', sa.Column('packed_terms', sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute(KEEP_PACKED_TERMS_IN_ROW)
    items = sa.table('items', sa.column('id', sa.Integer()), sa.column('terms', sa.Text()),
                     sa.column('packed_terms', sa.LargeBinary()))
    read = sa.select(items.c.id, sa.cast(items.c.terms, sa.Text)).where(items.c.id > sa.bindparam('after')) \
        .order_by(items.c.id).limit(PAGE)
    write = items.update().where(items.c.id == sa.bindparam('item')).values(packed_terms=sa.bindparam('packed'))
    after = 0
    while rows := bind.execute(read, {'after': after}).all():
        bind.execute(write, [{'item': item_id, 'packed': pack(json.loads(text) if text else {})}
                             for item_id, text in rows])
        after = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table('items') as batch:
        batch.drop_column('packed_terms')
