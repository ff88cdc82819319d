"""What ranking reads of the engine's candidates from the database: term vectors, facts, people.

Read as plain rows with timestamps as the driver returns them: SQLAlchemy's per-row JSON and
datetime processing would cost more than the database does for a few hundred candidates.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    String,
    Text,
    any_,
    bindparam,
    cast,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from plugin.matching.packed import Packed
from plugin.matching.reuse import Candidate, Pool, is_resolved
from plugin.matching.roles import strongest
from plugin.matching.similarity import Vector
from plugin.models.content import Contribution, Item

MAX_TIMES = 1000  # contributions per person and item counted (the ranking uses three)
# (account, strongest role, epoch seconds of their latest work, contributions) per item
People = dict[int, list[tuple[str, str, float, int]]]


def among(column: Any, name: str, array: bool) -> ColumnElement[bool]:
    """`column IN (:name, ...)`, or with `array` (PostgreSQL) `column = ANY(:name)`.

    One array parameter keeps the statement's text, and so the server's prepared plan, the same
    for any number of values, and SQLAlchemy renders no list of parameters per call.
    """
    if array:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def _raw_time(column: Any, dialect: str) -> Any:
    """A UTC timestamp column as the driver returns it, without a conversion per row in Python."""
    return type_coerce(column, String() if dialect == "sqlite" else DateTime(timezone=True))


def epochs(values: Sequence[Any], dialect: str) -> list[float]:
    """Epoch seconds of `_raw_time` values: SQLite's UTC text parsed by numpy, or aware datetimes."""
    if not values:
        return []
    if dialect == "sqlite":  # microseconds / 1e6 is exactly what datetime.timestamp() computes
        return (np.array(values, dtype="datetime64[us]").astype(np.int64) / 1e6).tolist()
    return [v.timestamp() for v in values]


@functools.lru_cache(maxsize=4)
def _statements(dialect: str) -> tuple[Any, Any, Any]:
    array = dialect == "postgresql"
    # `tenant_id + 0`: still scoped, but SQLite then looks the ids up by primary key instead of
    # walking the tenant's whole (tenant, seq) index.
    items = select(Item.id, Item.packed_terms, Item.resolution, Item.status, Item.helpful_count,
                   Item.not_relevant_count, _raw_time(Item.created, dialect), Item.title_vector).where(
        among(Item.tenant_id + 0, "tenants", array), among(Item.id, "ids", array))
    people = select(Contribution.item_id, Contribution.account_id, Contribution.role,
                    _raw_time(Contribution.at, dialect)).where(
        among(Contribution.tenant_id + 0, "tenants", array), among(Contribution.item_id, "ids", array))
    vectors = select(Item.id, cast(Item.terms, Text)).where(
        among(Item.tenant_id + 0, "tenants", array), among(Item.id, "ids", array))
    return items, people, vectors


def load(session: Session, tenants: Sequence[int], ids: list[int]) -> Pool:
    """The stored candidates among `ids` (of the given tenants), in that order (items deleted since are left out)."""
    if not ids:
        return Pool([], Packed.of([]), functools.partial(vectors, session, tenants))
    dialect = session.get_bind().dialect.name
    rows = _binary_rows(session, _statements(dialect)[0], {"tenants": list(tenants), "ids": ids})
    found = {row[0]: row for row in rows}
    rows = [found[i] for i in ids if i in found]
    items = [Candidate(row[0], is_resolved(row[2], row[3]), row[4] or 0, row[5] or 0, at,
                       title_vector=bytes(row[7]) if row[7] is not None else None)
             for row, at in zip(rows, epochs([row[6] for row in rows], dialect), strict=True)]
    return Pool(items, Packed.of([row[1] for row in rows]), functools.partial(vectors, session, tenants))


def _binary_rows(session: Session, statement: Any, params: dict[str, Any]) -> Sequence[Any]:
    """A statement's rows; on PostgreSQL asked for in binary.

    Why: psycopg otherwise receives bytea as hex text, twice the bytes of the packed vectors,
    decoded in Python row by row; in binary their read took half the time.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return connection.execute(statement, params).all()
    compiled = statement.compile(dialect=connection.dialect)
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor(binary=True) as cursor:
        return cursor.execute(str(compiled), {**compiled.params, **params}).fetchall()


def vectors(session: Session, tenants: Sequence[int], ids: list[int]) -> list[Vector]:
    """The named term vectors of some items, in order ({} for one deleted since)."""
    if not ids:
        return []
    dialect = session.get_bind().dialect.name
    rows = session.execute(_statements(dialect)[2], {"tenants": list(tenants), "ids": ids}).all()
    found = {item_id: orjson.loads(text) if text else {} for item_id, text in rows}
    return [found.get(i, {}) for i in ids]


def people(session: Session, tenants: Sequence[int], ids: list[int]) -> People:
    """Who worked on each item: per person their strongest role, latest time and contributions."""
    if not ids:
        return {}
    dialect = session.get_bind().dialect.name
    rows = session.execute(_statements(dialect)[1], {"tenants": list(tenants), "ids": ids}).all()
    grouped: dict[int, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for (item_id, account, role, _), at in zip(rows, epochs([row[3] for row in rows], dialect), strict=False):
        grouped[item_id][account].append((role, at))
    out: People = {}
    for item_id, by_person in grouped.items():
        out[item_id] = [(account, strongest([role for role, _ in done]), max(at for _, at in done),
                         min(len(done), MAX_TIMES)) for account, done in by_person.items()]
    return out
