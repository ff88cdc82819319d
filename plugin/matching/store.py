"""Storing items: fields, contributions, people and the index bookkeeping, in one transaction."""
from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    CursorResult,
    DateTime,
    Integer,
    LargeBinary,
    Select,
    Table,
    Text,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached

from connect.db import utcnow
from plugin.content.markup import MAX_TEXT, clip
from plugin.content.model import ContributionDoc, ItemDoc
from plugin.matching import semantic
from plugin.matching.parallel import Texts, vectors_of
from plugin.matching.vectors import to_json
from plugin.models.content import (
    Contribution,
    Erasure,
    IndexState,
    IndexTombstone,
    Item,
    Person,
    StoredSuggestion,
)

# Roles an item's own data states; others (answerer, kudos) are recorded by other services and kept.
DERIVED_ROLES = ("assignee", "resolver", "reporter", "commenter", "creator", "editor")


def dialect_insert(session: Session, table: type | Table) -> Any:
    """An INSERT with ON CONFLICT support for the session's database (SQLite or PostgreSQL)."""
    return insert_for(session.get_bind().dialect.name, table)


def insert_for(dialect: str, table: type | Table) -> Any:
    """An INSERT with ON CONFLICT support for a kind of database (`dialect.name`)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


_STATE = cast(Table, IndexState.__table__)
# Built once, run as Core: building it and the ORM's bulk-update path cost more than the
# database did for a single item's update.
_BUMP = (update(_STATE).where(_STATE.c.tenant_id == bindparam("tenant"))
         .values(seq=_STATE.c.seq + 1).returning(_STATE.c.seq))


def next_seq(session: Session, tenant_id: int) -> int:
    """Bump the tenant's change sequence; the row lock orders concurrent writers by commit."""
    if session.autoflush:  # pending ORM changes go first, as they would before an ORM statement
        session.flush()
    connection = session.connection()
    seq = connection.execute(_BUMP, {"tenant": tenant_id}).scalar()
    if seq is None:
        connection.execute(dialect_insert(session, _STATE).values(tenant_id=tenant_id, seq=0)
                           .on_conflict_do_nothing(index_elements=["tenant_id"]))
        seq = connection.execute(_BUMP, {"tenant": tenant_id}).scalar_one()
    return int(seq)


# PostgreSQL locks the row; SQLite has no row locks, and a write takes its one write lock.
_HOLD = {"postgresql": select(_STATE.c.seq).where(_STATE.c.tenant_id == bindparam("tenant")).with_for_update(),
         "sqlite": update(_STATE).where(_STATE.c.tenant_id == bindparam("tenant")).values(seq=_STATE.c.seq)}


def hold_seq(session: Session, tenant_id: int) -> None:
    """Take the tenant's change-sequence lock without moving the sequence, until commit.

    Whoever takes it after `next_seq` in a transaction (an erasure) has then either committed,
    and what it removed is seen, or waits: a write is not lost between a read and a store.
    """
    connection = session.connection()
    connection.execute(_HOLD[connection.dialect.name], {"tenant": tenant_id})


def space_of(session: Session, tenant_id: int, source: str, key: str) -> str | None:
    """The stored item's space (None for an issue, or an item not stored)."""
    return session.scalar(select(Item.space).where(Item.tenant_id == tenant_id, Item.source == source,
                                                   Item.key == key))


def get_item(session: Session, tenant_id: int, source: str, key: str) -> Item | None:
    """The stored item for a source and key, or None."""
    return session.scalar(select(Item).where(Item.tenant_id == tenant_id, Item.source == source,
                                             Item.key == key))


def _sqlite_stamp(value: datetime | None) -> str | None:
    """As SQLAlchemy stores a UTCDateTime on SQLite: UTC, no offset, always microseconds."""
    if value is None:
        return None
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # SQLAlchemy's format for SQLite: half the cost of isoformat on an aware datetime.
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}")


def _aware_stamp(value: datetime | None) -> datetime | None:
    """As UTCDateTime binds a timestamp for drivers that take datetimes: aware, in UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stamps(dialect: str) -> Callable[[datetime | None], Any]:
    """The encoder of UTC timestamps for a database, giving what UTCDateTime would bind."""
    return _sqlite_stamp if dialect == "sqlite" else _aware_stamp


def _fields(doc: ItemDoc, stamp: Callable[[datetime | None], Any]) -> tuple[dict[str, Any], Texts]:
    """An item's stored columns from a normalised doc, encoded, but for its term vector; its texts."""
    title, text = clip(doc.title, 1000), clip(doc.text, MAX_TEXT)
    comments = clip("\n\n".join(doc.comments), MAX_TEXT)
    labels, components = list(doc.labels)[:100], list(doc.components)[:100]
    columns = {"kind": doc.kind, "title": title, "text": text, "comments_text": comments,
               "project": doc.project, "space": doc.space, "labels": to_json(labels),
               "components": to_json(components), "links": to_json(list(dict.fromkeys(doc.links))[:500]),
               "status": doc.status, "resolution": doc.resolution, "url": doc.url,
               "external_id": doc.external_id, "created": stamp(doc.created),
               "updated": stamp(doc.updated)}
    return columns, (title, text, comments, components + labels)


def _item_rows(session: Session, tenant_id: int, docs: list[ItemDoc]) -> list[dict[str, Any]]:
    """The docs' rows, encoded for the driver (their `index_seq` is set when written)."""
    stamp = _stamps(session.get_bind().dialect.name)
    now = stamp(utcnow())
    fields = [_fields(d, stamp) for d in docs]
    vectors = vectors_of([texts for _, texts in fields])  # a large page: on more than one core
    titles = semantic.packed_titles([d.title for d in docs])
    return [{"tenant_id": tenant_id, "source": d.source, "key": d.key, "index_seq": None,
             "indexed_at": now, "helpful_count": 0, "not_relevant_count": 0, **columns, "terms": vector,
             "packed_terms": packed, "title_vector": title}
            for d, (columns, _), (vector, packed), title in zip(docs, fields, vectors, titles, strict=True)]


def _write_items(session: Session, tenant_id: int, docs: list[ItemDoc], rows: list[dict[str, Any]]) -> list[int]:
    """Bump the tenant's sequence and upsert the docs' rows, one statement per page; their ids in order.

    An upsert: the ORM's unit of work cost more than the database for a backfill page, and no
    lookup of existing rows is needed first (one round trip fewer per single-item update). Plain
    SQL with the values encoded already: SQLAlchemy's per-row work cost as much as the insert.
    """
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql" and len(rows) <= _ROWS_PER_UPSERT:
        # One page: the statement writing it bumps the sequence too, a round trip fewer.
        if session.autoflush:  # as next_seq does
            session.flush()
        values = list(map(itemgetter(*_PG_BUMPED_COLUMNS), rows))
        pages = [(_PG_BUMPING_ROW, (tenant_id, *values[0])) if len(values) == 1
                 else (_PG_BUMPING_UPSERT, (tenant_id, *map(list, zip(*values, strict=True))))]
    else:
        seq = next_seq(session, tenant_id)
        for row in rows:
            row["index_seq"] = seq
        values = list(map(itemgetter(*_ITEM_COLUMNS), rows))
        pages = [_page_statement(dialect, values[start:start + _ROWS_PER_UPSERT])
                 for start in range(0, len(values), _ROWS_PER_UPSERT)]
    ids: dict[tuple[str, str], int] = {}
    for sql, params in pages:
        result = session.connection().exec_driver_sql(sql, params)
        ids.update(((source, key), item_id) for item_id, source, key in result)
    return [ids[(d.source, d.key)] for d in docs]


def _page_statement(dialect: Any, page: list[tuple[Any, ...]]) -> tuple[str, tuple[Any, ...]]:
    # A single row as plain values: its 23 parameters cost psycopg less than 23 one-element arrays.
    if dialect.name == "postgresql" and len(page) > 1:
        return _PG_UPSERT, tuple(map(list, zip(*page, strict=True)))
    return _upsert_sql(dialect.name, dialect.paramstyle, len(page)), tuple(chain.from_iterable(page))


_ITEM_COLUMNS = tuple(c.name for c in Item.__table__.columns if c.name != "id")
# SQLite takes up to 32766 parameters per statement, psycopg 65535.
_ROWS_PER_UPSERT = 30_000 // len(_ITEM_COLUMNS)


_KEPT_ON_UPDATE = {"tenant_id", "source", "key", "helpful_count", "not_relevant_count"}


def _on_conflict(quote: Callable[[str], str]) -> str:
    return ("ON CONFLICT (tenant_id, source, key) DO UPDATE SET "
            + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in _ITEM_COLUMNS if c not in _KEPT_ON_UPDATE)
            + " RETURNING id, source, key")


@functools.lru_cache(maxsize=32)  # a few page sizes recur; up to 90 kB of SQL each
def _upsert_sql(dialect: str, paramstyle: str, rows: int) -> str:
    """The items upsert of `rows` rows as one VALUES list (SQLite; a single row on PostgreSQL)."""
    quote = (postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()).identifier_preparer.quote
    mark = "?" if paramstyle == "qmark" else "%s"
    row = f"({', '.join([mark] * len(_ITEM_COLUMNS))})"
    return (f"INSERT INTO items ({', '.join(map(quote, _ITEM_COLUMNS))}) VALUES {', '.join([row] * rows)} "
            + _on_conflict(quote))


def _pg_array_type(column: Any) -> str:
    """The array type a column's values travel in: text for strings and JSON (cast where stored)."""
    if isinstance(getattr(column.type, "impl", column.type), (Integer, DateTime, LargeBinary, Boolean)):
        return column.type.compile(dialect=postgresql.dialect())
    return "TEXT"


@functools.lru_cache(maxsize=8)
def _pg_unnest_sql(table: Table, columns: tuple[str, ...], fixed: tuple[tuple[str, str], ...] = ()) -> str:
    """An INSERT of one array parameter per column, unnested into rows in the arrays' order.

    On PostgreSQL a page is then a short, fixed statement that psycopg converts and the server
    parses and plans once (prepared), not 90 kB of SQL with 11,500 parameters per page: the
    conversion alone cost psycopg more than encoding the values, and the server planned a
    500-row VALUES list each time. `fixed` columns take one SQL expression for every row.
    """
    quote = postgresql.dialect().identifier_preparer.quote
    # %b: psycopg sends the arrays in binary; its text form quotes element by element in Python.
    arrays = ", ".join(f"%b::{_pg_array_type(table.c[c])}[]" for c in columns)
    picked = [f"u.{quote(c)}::JSON" if isinstance(table.c[c].type, JSON) else f"u.{quote(c)}" for c in columns]
    names = [*map(quote, columns), *(quote(name) for name, _ in fixed)]
    return (f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(picked + [e for _, e in fixed])} "
            f"FROM unnest({arrays}) AS u({', '.join(map(quote, columns))})")


_PG_UPSERT = (_pg_unnest_sql(Item.__table__, _ITEM_COLUMNS) + " "
              + _on_conflict(postgresql.dialect().identifier_preparer.quote))
# The sequence bump as an upsert (a tenant's first change needs no second statement), run by
# the items' statement, whose every row takes the new value: `next_seq` in the same round trip.
_PG_BUMP = ("WITH bump AS (INSERT INTO index_state (tenant_id, seq) VALUES (%s, 1) "
            "ON CONFLICT (tenant_id) DO UPDATE SET seq = index_state.seq + 1 RETURNING seq) ")
_PG_BUMPED_COLUMNS = tuple(c for c in _ITEM_COLUMNS if c != "index_seq")
_PG_BUMPING_UPSERT = (_PG_BUMP + _pg_unnest_sql(Item.__table__, _PG_BUMPED_COLUMNS,
                                                (("index_seq", "(SELECT seq FROM bump)"),))
                      + " " + _on_conflict(postgresql.dialect().identifier_preparer.quote))
_PG_BUMPING_ROW = (_PG_BUMP + f"INSERT INTO items ({', '.join(_PG_BUMPED_COLUMNS)}, index_seq) "
                   f"VALUES ({', '.join(['%s'] * len(_PG_BUMPED_COLUMNS))}, (SELECT seq FROM bump)) "
                   + _on_conflict(postgresql.dialect().identifier_preparer.quote))


def _loaded(session: Session, ids: list[int]) -> list[Item]:
    """The items as ORM objects without a query: attributes load on access."""
    out = []
    for item_id in ids:
        item = session.identity_map.get(Session.identity_key(Item, item_id))
        if item is None:
            item = Item(id=item_id)
            make_transient_to_detached(item)
            session.add(item)
        out.append(item)
    return out


_CONTRIBUTION_COLUMNS = ("tenant_id", "item_id", "account_id", "role", "at")
# One array of ids: a page's 500 ids inline made each statement new SQL to convert and plan.
_PG_FORGET = "DELETE FROM contributions WHERE item_id = ANY(%b::INTEGER[]) AND role = ANY(%b::TEXT[])"
Shown = tuple[str | None, bool | None]  # (display name, active) as the host last showed them
_PG_KNOWN_PEOPLE = ("SELECT account_id, display_name, active FROM people "
                    "WHERE tenant_id = %s AND account_id = ANY(%b::TEXT[])")
# The items' derived contributions deleted and inserted anew, and the named people looked up, in
# one statement: its parts share one snapshot, so the delete never sees the rows inserted beside it.
_PG_REPLACE_CONTRIBUTIONS = (
    f"WITH gone AS ({_PG_FORGET}), added AS ({_pg_unnest_sql(Contribution.__table__, _CONTRIBUTION_COLUMNS)}) "
    + _PG_KNOWN_PEOPLE)


def _replace_contributions(session: Session, tenant_id: int, items: list[tuple[int, ItemDoc]],
                           accounts: list[str]) -> dict[str, Shown]:
    """Replace the items' derived contributions; how `accounts` are stored (name, active)."""
    ids = [item_id for item_id, _ in items]
    dialect = session.get_bind().dialect.name
    stamp = _stamps(dialect)
    rows = [(tenant_id, item_id, c.account_id[:255], c.role, stamp(c.at))
            for item_id, doc in items for c in doc.contributions if c.role in DERIVED_ROLES and c.account_id]
    if dialect == "postgresql":  # one round trip: each one waits for the server to be scheduled
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in _CONTRIBUTION_COLUMNS]
        found = session.connection().exec_driver_sql(
            _PG_REPLACE_CONTRIBUTIONS, (ids, list(DERIVED_ROLES), *columns, tenant_id, accounts)).all()
        return {account: (name, active) for account, name, active in found}
    session.execute(delete(Contribution).where(Contribution.item_id.in_(ids),
                                               Contribution.role.in_(DERIVED_ROLES)))
    _insert_rows(session, Contribution, _CONTRIBUTION_COLUMNS, rows)
    return _known_people(session, tenant_id, accounts) if accounts else {}


def _insert_sql(session: Session, model: type, columns: tuple[str, ...]) -> str:
    """A plain INSERT of the columns with positional parameters in the driver's style."""
    dialect = session.get_bind().dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(dialect.identifier_preparer.quote(name) for name in columns)
    return (f"INSERT INTO {model.__table__.name} ({names}) "  # type: ignore[attr-defined]
            f"VALUES ({', '.join([mark] * len(columns))})")


def remember_people(session: Session, tenant_id: int, people: Iterable[tuple[str, str | None]]) -> None:
    """Insert unknown people and refresh display names the host showed."""
    named = _named((account, name, None) for account, name in people)
    if named:
        _add_people(session, tenant_id, named, _known_people(session, tenant_id, list(named)))


def _named(people: Iterable[tuple[str, str | None, bool | None]]) -> dict[str, Shown]:
    """Each account once, with the last display name and `active` given for it."""
    named: dict[str, Shown] = {}
    for account, name, active in people:
        if account:
            before = named.get(account, (None, None))
            named[account] = (name or before[0], before[1] if active is None else active)
    return named


def _add_people(session: Session, tenant_id: int, named: dict[str, Shown], known: dict[str, Shown]) -> None:
    """Insert the people not `known` and store the names and `active` that changed."""
    changed = [(tenant_id, account, name, active) for account, (name, active) in named.items()
               if account not in known or (name and known[account][0] != name)
               or (active is not None and known[account][1] is not active)]
    # One statement, many rows: per-person statements dominated backfills. What a payload did
    # not say (no name, no `active`) keeps what is stored.
    _insert_rows(session, Person, ("tenant_id", "account_id", "display_name", "active"), changed,
                 "ON CONFLICT (tenant_id, account_id) DO UPDATE SET "
                 "display_name = COALESCE(excluded.display_name, people.display_name), "
                 "active = COALESCE(excluded.active, people.active)")


def _known_people(session: Session, tenant_id: int, accounts: list[str]) -> dict[str, Shown]:
    if session.get_bind().dialect.name == "postgresql":  # one array: the statement stays the same
        rows = session.connection().exec_driver_sql(_PG_KNOWN_PEOPLE, (tenant_id, accounts)).all()
    else:
        rows = session.execute(select(Person.account_id, Person.display_name, Person.active).where(
            Person.tenant_id == tenant_id, Person.account_id.in_(accounts))).all()
    return {account: (name, active) for account, name, active in rows}


def _insert_rows(session: Session, model: type, columns: tuple[str, ...], rows: list[tuple[Any, ...]],
                 suffix: str = "") -> None:
    """Insert rows of encoded values: one statement of arrays on PostgreSQL, else the driver's executemany.

    Plain SQL: SQLAlchemy's per-row work cost more than the database does for many small rows.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"{_pg_unnest_sql(model.__table__, columns)} {suffix}",  # type: ignore[attr-defined]
                                   tuple(map(list, zip(*rows, strict=True))))
    else:
        connection.exec_driver_sql(f"{_insert_sql(session, model, columns)} {suffix}", rows)


# PostgreSQL plans by statistics that autovacuum refreshes about once a minute. A backfill into
# young tables outgrows them within seconds: planned for a table a tenth of its size, each page's
# contributions delete became a sequential scan (26 ms at 90,000 rows, growing with every page).
# As PostgreSQL's docs advise after bulk loads, ANALYZE a table the store writes in bulk once it
# has more rows changed since its last ANALYZE than it had then: about once per doubling.
BULK_PAGE = 64
BULK_TABLES = ("items", "contributions", "people")
_PG_STALE = ("SELECT s.relid::regclass::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
             "WHERE s.relid = ANY(%s::regclass[]) AND s.n_mod_since_analyze > greatest(c.reltuples, %s)")
_STALE_FLOOR = 1000  # rows: below this a plan hardly matters


def refresh_statistics(session: Session, tables: Iterable[str] = BULK_TABLES) -> list[str]:
    """ANALYZE those of the tables whose statistics bulk writes have outgrown (PostgreSQL); their names.

    SKIP_LOCKED: when another process (or autovacuum) is analysing one, it is left to them.
    Without the table's ownership PostgreSQL skips it with a warning, and plans stay as they were.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return []
    stale = [name for (name,) in connection.exec_driver_sql(_PG_STALE, (list(tables), _STALE_FLOOR))]
    if stale:
        connection.exec_driver_sql(f"ANALYZE (SKIP_LOCKED) {', '.join(stale)}")
    return stale


def store_items(session: Session, tenant_id: int, docs: list[ItemDoc]) -> list[int]:
    """Create or update many items in one go; their ids (one per distinct source and key).

    For callers that only need ids (backfills, replays): making ORM objects of a page of items
    cost as much as storing their contributions.
    """
    docs = list({(d.source, d.key): d for d in docs}.values())
    if not docs:
        return []
    # Text analysis first: bumping the sequence takes SQLite's write lock, which analysis does not need.
    rows = _item_rows(session, tenant_id, docs)
    ids = _write_items(session, tenant_id, docs, rows)
    # Erasures read under the sequence lock, which an erasure takes too (`uncredit`): one that
    # committed while the texts were analysed is seen, and its person is not stored again.
    docs = _without_erased(session, tenant_id, docs)
    if len(docs) >= BULK_PAGE:  # a backfill's page: the statements below plan by these statistics
        refresh_statistics(session)
    named = _named((c.account_id, c.display_name, c.active) for d in docs for c in d.contributions)
    known = _replace_contributions(session, tenant_id, list(zip(ids, docs, strict=True)), list(named))
    _add_people(session, tenant_id, named, known)
    for item_id in ids if session.identity_map else ():  # copies this session loaded are stale now
        held = session.identity_map.get(Session.identity_key(Item, item_id))
        if held is not None:
            session.expire(held)
    return ids


def _without_erased(session: Session, tenant_id: int, docs: list[ItemDoc]) -> list[ItemDoc]:
    """The documents without the work people did before they erased their data (or their
    account closed): the host still shows it, Inflow never learns it again."""
    accounts = sorted({c.account_id for d in docs for c in d.contributions if c.account_id})
    erased = erased_among(session, tenant_id, accounts) if accounts else {}
    if not erased:
        return docs

    def kept(d: ItemDoc, c: ContributionDoc) -> bool:
        if c.account_id not in erased:
            return True
        done = _done_since(d, c)
        return done is not None and done > erased[c.account_id]

    return [replace(d, contributions=[c for c in d.contributions if kept(d, c)]) for d in docs]


def _done_since(doc: ItemDoc, c: ContributionDoc) -> datetime | None:
    """The earliest the contribution's work can have been done.

    Its time, but for the assignee of an issue not resolved: that time is the issue's last
    change, anyone's (a comment by someone else), and they may have been assigned since it was
    created. Taken as proof, it credited an erased assignee again at the next edit of the issue.
    """
    resolved = any(o.role == "resolver" and o.account_id == c.account_id for o in doc.contributions)
    return doc.created if c.role == "assignee" and not resolved else c.at


def erased_among(session: Session, tenant_id: int, accounts: list[str]) -> dict[str, datetime]:
    """When each of these accounts erased its data, for those that did.

    Plain SQL first: nearly every store finds no one, and the ORM's statement cost more than
    the lookup (a tenth of a one-item store on SQLite).
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        found = connection.exec_driver_sql(_PG_ERASED, (tenant_id, accounts)).scalars().all()
    else:
        marks = ", ".join("?" * len(accounts))
        found = connection.exec_driver_sql(
            f"SELECT account_id FROM erasures WHERE tenant_id = ? AND account_id IN ({marks})",
            (tenant_id, *accounts)).scalars().all()
    if not found:
        return {}
    return dict(session.execute(select(Erasure.account_id, Erasure.erased_at).where(
        Erasure.tenant_id == tenant_id, Erasure.account_id.in_(found))).all())


_PG_ERASED = "SELECT account_id FROM erasures WHERE tenant_id = %s AND account_id = ANY(%b::TEXT[])"


def upsert_items(session: Session, tenant_id: int, docs: list[ItemDoc]) -> list[Item]:
    """Create or update many items in one go (one change-sequence bump); the stored items."""
    return _loaded(session, store_items(session, tenant_id, docs))


def upsert_item(session: Session, tenant_id: int, doc: ItemDoc) -> Item:
    """Create or update an item with its contributions and people; index caches pick it up."""
    return upsert_items(session, tenant_id, [doc])[0]


def add_contribution(session: Session, tenant_id: int, item_id: int, account_id: str, role: str,
                     at: datetime, display_name: str | None = None) -> None:
    """Record a contribution no item payload carries (answerer, kudos received).

    LookupError when the tenant has no such item (there is no foreign key to refuse it).
    """
    # Index caches hold who worked on each item: re-announce the item so they reload it. The
    # sequence lock comes first, so a concurrent `delete_item` has either finished or waits.
    announced = cast(CursorResult[Any], session.execute(
        update(Item).where(Item.tenant_id == tenant_id, Item.id == item_id)
        .values(index_seq=next_seq(session, tenant_id))))
    if not announced.rowcount:
        raise LookupError(f"tenant {tenant_id} has no item {item_id}")
    session.add(Contribution(tenant_id=tenant_id, item_id=item_id, account_id=account_id, role=role,
                             at=at))
    remember_people(session, tenant_id, [(account_id, display_name)])


def delete_item(session: Session, tenant_id: int, source: str, key: str) -> bool:
    """Delete an item and everything hanging off it; caches drop it on their next sync."""
    item = get_item(session, tenant_id, source, key)
    if item is None:
        return False
    # The sequence bump first: its row lock keeps a concurrent store of this item from adding
    # contributions after the delete below (no foreign key would catch them).
    session.add(IndexTombstone(tenant_id=tenant_id, item_id=item.id, seq=next_seq(session, tenant_id)))
    session.execute(delete(Contribution).where(Contribution.item_id == item.id))
    # With its tenant: the (tenant, item, kind) index finds the rows; by item alone, a table scan.
    session.execute(delete(StoredSuggestion).where(StoredSuggestion.tenant_id == tenant_id,
                                                   StoredSuggestion.item_id == item.id))
    session.delete(item)
    session.flush()
    return True


def set_feedback_counts(session: Session, tenant_id: int, item_id: int, helpful: int,
                        not_relevant: int) -> None:
    """Set how many people found an item helpful or not relevant (ranking reads both)."""
    item = session.scalar(select(Item).where(Item.tenant_id == tenant_id, Item.id == item_id))
    if item is None or (item.helpful_count, item.not_relevant_count) == (helpful, not_relevant):
        return
    item.helpful_count, item.not_relevant_count = helpful, not_relevant
    item.index_seq = next_seq(session, tenant_id)
    session.flush()


def erase_person(session: Session, tenant_id: int, account_id: str) -> None:
    """Remove someone's contributions, their Person row and stored suggestions naming them."""
    uncredit(session, tenant_id, account_id)
    session.execute(delete(Person).where(Person.tenant_id == tenant_id,
                                         Person.account_id == account_id))
    session.flush()


def _naming(tenant_id: int, account_id: str) -> Select[StoredSuggestion]:
    """The tenant's stored expert rows whose text holds the account id as JSON writes it.

    Narrowed in the database: decoding every row's payload to find the few naming someone
    took an erasure many seconds on a large site, in the request that asked for it.
    """
    return select(StoredSuggestion).where(
        StoredSuggestion.tenant_id == tenant_id, StoredSuggestion.kind == "experts",
        sql_cast(StoredSuggestion.payload, Text).contains(json.dumps(account_id), autoescape=True))


def uncredit(session: Session, tenant_id: int, account_id: str) -> None:
    """Remove an account's contributions and the stored expert suggestions naming it."""
    touched = select(Contribution.item_id).where(Contribution.tenant_id == tenant_id,
                                                 Contribution.account_id == account_id)
    # Re-announce their items so every process's index cache forgets them as a contributor.
    session.execute(update(Item).where((Item.tenant_id + 0) == tenant_id, Item.id.in_(touched))
                    .values(index_seq=next_seq(session, tenant_id)), execution_options={"synchronize_session": False})
    session.execute(delete(Contribution).where(Contribution.tenant_id == tenant_id,
                                               Contribution.account_id == account_id))
    # Only their entries go: a list emptied of everyone else would show "no one has worked on
    # similar items" on every item they had worked near, until each item changed again.
    for row in session.scalars(_naming(tenant_id, account_id)):
        kept = [entry for entry in row.payload or [] if entry.get("account_id") != account_id]
        if len(kept) != len(row.payload or []):
            row.payload, row.computed_at = kept, utcnow()  # cached views of it see the change
    session.flush()
