"""contributions without a foreign key to items

PostgreSQL checked every contribution row against items: a locking lookup per row, about 9 us,
some 3 s of server CPU per 100,000 items stored (4.6 contributions each), the largest single cost
left in a backfill's writes. The key guarded nothing the code does not already: contributions are
derived rows only `store` writes, always for items it upserted in the same transaction, and
`delete_item` deletes them with their item; both run under the tenant's index-sequence row lock,
so neither can slip between the other's statements. The key to tenants stays (purges use it).

Revision ID: 842b01e0df27
Revises: 6f1bdc47322a
Create Date: 2026-12-01 04:45:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '842b01e0df27'
down_revision: str | Sequence[str] | None = '6f1bdc47322a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL named the unnamed key when the table was created; SQLite keeps it unnamed, so batch
# mode needs a naming convention to find it.
_PG_NAME = 'contributions_item_id_fkey'
_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
_SQLITE_NAME = 'fk_contributions_item_id_items'


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        with op.batch_alter_table('contributions', naming_convention=_CONVENTION) as batch_op:
            batch_op.drop_constraint(_SQLITE_NAME, type_='foreignkey')
    else:
        op.drop_constraint(_PG_NAME, 'contributions', type_='foreignkey')


def downgrade() -> None:
    # Contributions of items deleted meanwhile would violate the key: drop them first.
    op.execute('DELETE FROM contributions WHERE item_id NOT IN (SELECT id FROM items)')
    if op.get_bind().dialect.name == 'sqlite':
        with op.batch_alter_table('contributions') as batch_op:
            batch_op.create_foreign_key(_SQLITE_NAME, 'items', ['item_id'], ['id'], ondelete='CASCADE')
    else:
        op.create_foreign_key(_PG_NAME, 'contributions', 'items', ['item_id'], ['id'], ondelete='CASCADE')
