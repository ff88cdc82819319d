"""items title vector: each item's title as a vector of its meaning, for ranking

Ranking compares the target's title with each candidate's (`plugin.matching.semantic`).
Existing rows get theirs here, a page of ids at a time; the store writes it from then on.

Revision ID: f3c1a8d2e7b5
Revises: e2b9f4c7a1d6
Create Date: 2026-12-06 06:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from plugin.matching.semantic import packed_titles
from plugin.models.content import KEEP_TITLE_VECTOR_IN_ROW

revision: str = 'f3c1a8d2e7b5'
down_revision: str | Sequence[str] | None = 'e2b9f4c7a1d6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = 2000


def upgrade() -> None:
    op.add_column('items', sa.Column('title_vector', sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute(KEEP_TITLE_VECTOR_IN_ROW)
    items = sa.table('items', sa.column('id', sa.Integer()), sa.column('title', sa.Text()),
                     sa.column('title_vector', sa.LargeBinary()))
    read = sa.select(items.c.id, items.c.title).where(items.c.id > sa.bindparam('after')) \
        .order_by(items.c.id).limit(PAGE)
    write = items.update().where(items.c.id == sa.bindparam('item')).values(title_vector=sa.bindparam('vector'))
    after = 0
    while rows := bind.execute(read, {'after': after}).all():
        vectors = packed_titles([title or '' for _, title in rows])
        bind.execute(write, [{'item': item_id, 'vector': vector}
                             for (item_id, _), vector in zip(rows, vectors, strict=True)])
        after = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table('items') as batch:
        batch.drop_column('title_vector')
