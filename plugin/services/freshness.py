"""What a rendered view depends on in the database, read back in one query to tell if it changed.

A view is described by facts: the item (its change sequence, which every change to it or to its
contributions bumps), its stored suggestions, the project's settings, the viewer's verdicts, the
questions and kudos on the item, everyone's preferences, the people and items it showed, the
viewer's impact. Each fact is one or a few scalar subqueries; a view's facts are read together in
one statement, compiled once per shape of facts and run on the driver's own connection, and two
reads are equal exactly when nothing the facts cover changed in between.

Two kinds: facts a view declares before it renders (read first, so a change during the render
shows on the next view) and facts its render records with the value it saw (the people and items
it read, the viewer's impact), since only the render knows them.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from sqlalchemy import (
    Engine,
    Integer,
    QueuePool,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from connect.db import UTCDateTime, utcnow
from plugin.models.content import Item, Person, StoredSuggestion
from plugin.models.social import (
    Feedback,
    Kudos,
    PersonPreference,
    ProjectSettings,
    Question,
    QuestionEvent,
)
from plugin.search import sites
from plugin.services import settings

Bind = Callable[..., Any]  # bind(name, type_=None) -> a bind parameter of the fact
FIELD, ROW = "\x1f", "\x1e"  # separators of the rows an aggregate fact reads


class Fact(Protocol):
    """One thing a view depends on, read as scalar subqueries."""

    moving: ClassVar[bool]  # whether its parameters move with the clock (read again at each read)

    @property
    def shape(self) -> tuple[Any, ...]:
        """What the SQL depends on (never the values of its parameters)."""
        ...

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        """The scalar subqueries; `bind(name, type_)` makes this fact's parameter `name`."""
        ...

    def params(self) -> dict[str, Any]:
        """The values of this fact's parameters (by the names `columns` gave them)."""
        ...

    def value(self, raw: Sequence[Any]) -> Any:
        """This fact's value from its columns as the driver returned them."""
        ...


class _Plain:
    """Facts whose value is their columns as returned (ids, counts, times)."""

    moving: ClassVar[bool] = False

    def value(self, raw: Sequence[Any]) -> Any:
        return tuple(raw)


def _item_where(bind: Bind) -> tuple[Any, ...]:
    return (Item.tenant_id == bind("tenant"), Item.source == bind("source"),
            Item.key == bind("key"))


@dataclass(frozen=True)
class ItemState(_Plain):
    """The item (none when not stored) and its change sequence."""

    source: str
    key: str
    shape: tuple[Any, ...] = ("item",)

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        where = _item_where(bind)
        return [select(Item.id).where(*where).scalar_subquery(),
                select(Item.index_seq).where(*where).scalar_subquery()]

    def params(self) -> dict[str, Any]:
        return {"source": self.source, "key": self.key}


@dataclass(frozen=True)
class Stored(_Plain):
    """The item's stored suggestions of one kind (reuse or experts): which row, when computed."""

    source: str
    key: str
    kind: str
    shape: tuple[Any, ...] = ("stored",)

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        item = select(Item.id).where(*_item_where(bind)).scalar_subquery()
        where = (StoredSuggestion.tenant_id == bind("tenant"), StoredSuggestion.item_id == item,
                 StoredSuggestion.kind == bind("kind"))
        return [select(StoredSuggestion.id).where(*where).scalar_subquery(),
                select(StoredSuggestion.computed_at).where(*where).scalar_subquery()]

    def params(self) -> dict[str, Any]:
        return {"source": self.source, "key": self.key, "kind": self.kind}


@dataclass(frozen=True)
class Settings(_Plain):
    """The project's (or space's) settings row: panels on or off, purpose, rules, privacy."""

    project: str | None
    shape: tuple[Any, ...] = ("settings",)

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        where = (ProjectSettings.tenant_id == bind("tenant"),
                 ProjectSettings.project_key == bind("project"))
        return [select(ProjectSettings.id).where(*where).scalar_subquery(),
                select(ProjectSettings.updated_at).where(*where).scalar_subquery()]

    def params(self) -> dict[str, Any]:
        return {"project": self.project or ""}


def _fingerprint(model: Any, newest: Any, *where: Any) -> list[ColumnElement[Any]]:
    """Count, highest id and newest time of some rows: an insert, delete or update shows."""
    return [select(func.count()).select_from(model).where(*where).scalar_subquery(),
            select(func.max(model.id)).where(*where).scalar_subquery(),
            select(func.max(newest)).where(*where).scalar_subquery()]


@dataclass(frozen=True)
class Verdicts(_Plain):
    """The viewer's verdicts on the item's suggestions."""

    source: str
    key: str
    viewer: str | None
    shape: tuple[Any, ...] = ("verdicts",)

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        return _fingerprint(Feedback, Feedback.updated_at, Feedback.tenant_id == bind("tenant"),
                            Feedback.source == bind("source"), Feedback.item_key == bind("key"),
                            Feedback.account_id == bind("viewer"))

    def params(self) -> dict[str, Any]:
        return {"source": self.source, "key": self.key, "viewer": self.viewer or ""}


@dataclass(frozen=True)
class Questions(_Plain):
    """The questions on the item. Each step of a question (asked, reminded, passed on,
    answered, accepted) adds a question event, so their count and newest event cover it."""

    source: str
    key: str
    shape: tuple[Any, ...] = ("questions",)

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        where = (Question.tenant_id == bind("tenant"), Question.source == bind("source"),
                 Question.item_key == bind("key"))
        return [select(func.count()).select_from(Question).where(*where).scalar_subquery(),
                select(func.max(QuestionEvent.id))
                .join(Question, Question.id == QuestionEvent.question_id)
                .where(*where).scalar_subquery()]

    def params(self) -> dict[str, Any]:
        return {"source": self.source, "key": self.key}


@dataclass(frozen=True)
class KudosOn(_Plain):
    """The kudos given on the item (any kind)."""

    source: str
    key: str
    shape: tuple[Any, ...] = ("kudos on",)

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        return _fingerprint(Kudos, Kudos.created_at, Kudos.tenant_id == bind("tenant"),
                            Kudos.source == bind("source"), Kudos.item_key == bind("key"))

    def params(self) -> dict[str, Any]:
        return {"source": self.source, "key": self.key}


@dataclass(frozen=True)
class AllKudos(_Plain):
    """Every kudos of the site, both products (the recognition board counts them)."""

    shape: tuple[Any, ...] = ("all kudos",)

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        return _fingerprint(Kudos, Kudos.created_at, sites.of_site(Kudos.tenant_id, bind("tenant")))

    def params(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class Preferences(_Plain):
    """Who may be suggested: everyone's own choices (opt-outs, pauses; in either product of the
    site) and who was deactivated."""

    shape: tuple[Any, ...] = ("preferences",)

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        # One pass each over the site's choices and over who is deactivated (a count and a sum of
        # row ids: a few numbers however many left); every cached experts view reads them.
        def summary(*aggregates: Any) -> ColumnElement[Any]:
            return _joined(dialect, *(cast(a, String) for a in aggregates))

        return [select(summary(func.count(), func.max(PersonPreference.id), func.max(PersonPreference.updated_at)))
                .where(sites.of_site(PersonPreference.tenant_id, bind("tenant"))).scalar_subquery(),
                select(summary(func.count(), func.sum(Person.id)))
                .where(*settings.inactive(bind("tenant"))).scalar_subquery()]

    def params(self) -> dict[str, Any]:
        return {}


def _padded(values: Sequence[Any], pad: Any) -> tuple[Any, ...]:
    """Values padded to the next power of two, so a few statement shapes serve every length."""
    size = 1
    while size < len(values):
        size *= 2
    return (*values, *[pad] * (size - len(values)))


def _separator(code: int, dialect: str) -> Any:
    return literal_column(f"chr({code})" if dialect == "postgresql" else f"char({code})")


def _joined(dialect: str, *parts: Any) -> ColumnElement[Any]:
    text: ColumnElement[Any] = func.coalesce(parts[0], literal_column("''"))
    for part in parts[1:]:
        text = text + _separator(ord(FIELD), dialect) + func.coalesce(part, literal_column("''"))
    return text


def _aggregate(text: ColumnElement[Any], where: Any, dialect: str) -> ColumnElement[Any]:
    rows = select(text.label("row")).where(*where).subquery()
    agg = func.string_agg if dialect == "postgresql" else func.group_concat
    return select(agg(rows.c.row, _separator(ord(ROW), dialect))).scalar_subquery()


class _Rows:
    """Facts whose value is a set of rows, read as one string aggregate (in no set order)."""

    moving: ClassVar[bool] = False

    def value(self, raw: Sequence[Any]) -> Any:
        return frozenset(raw[0].split(ROW)) if raw[0] else frozenset()


@dataclass(frozen=True)
class People(_Rows):
    """How the people a render looked up are stored: names and avatars (recorded)."""

    accounts: tuple[str, ...]
    shape: tuple[Any, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", ("people", len(_padded(self.accounts, ""))))

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        accounts = [bind(f"a{n}") for n in range(self.shape[1])]
        return [_aggregate(_joined(dialect, Person.account_id, Person.display_name,
                                   Person.avatar_url),
                           (Person.tenant_id == bind("tenant"), Person.account_id.in_(accounts)),
                           dialect)]

    def params(self) -> dict[str, Any]:
        return {f"a{n}": account for n, account in enumerate(_padded(self.accounts, ""))}

    @staticmethod
    def row(account: str, name: str | None, avatar: str | None) -> str:
        """One stored person as this fact reads them."""
        return FIELD.join((account, name or "", avatar or ""))


@dataclass(frozen=True)
class Items(_Rows):
    """Items a render read for permission checks: still there, under the same key (recorded)."""

    ids: tuple[int, ...]
    shape: tuple[Any, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", ("items", len(_padded(self.ids, -1))))

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        ids = [bind(f"i{n}", Integer()) for n in range(self.shape[1])]
        # `tenant_id + 0`: the ids are looked up by primary key; by site, as panels._light reads.
        return [_aggregate(_joined(dialect, cast(Item.id, String), Item.source, Item.key,
                                   Item.external_id, Item.space),
                           (Item.id.in_(ids),
                            sites.of_site(Item.tenant_id + literal_column("0"), bind("tenant"))),
                           dialect)]

    def params(self) -> dict[str, Any]:
        return {f"i{n}": item_id for n, item_id in enumerate(_padded(self.ids, -1))}

    @staticmethod
    def row(item_id: int, source: str, key: str, external_id: str | None, space: str | None) -> str:
        """One item as this fact reads it (its space: a project's "only from these spaces")."""
        return FIELD.join((str(item_id), source, key, external_id or "", space or ""))


@dataclass(frozen=True)
class Impact(_Plain):
    """The viewer's impact over the last `days` as the contributors panel shows it (recorded:
    the window moves with the clock, so each read counts again up to now)."""

    viewer: str
    days: int
    shape: tuple[Any, ...] = ("impact",)
    moving: ClassVar[bool] = True

    def columns(self, bind: Bind, dialect: str) -> list[ColumnElement[Any]]:
        from plugin.services.recognition import impact_queries

        queries = impact_queries(bind("tenant"), bind("viewer"), bind("since", UTCDateTime()),
                                 bind("until", UTCDateTime()))
        return [query.scalar_subquery() for query in queries]

    def params(self) -> dict[str, Any]:
        until = utcnow()
        return {"viewer": self.viewer, "since": until - timedelta(days=self.days),
                "until": until}


# ---------- reading facts in one statement ----------


@dataclass(frozen=True)
class _Statement:
    sql: str
    order: tuple[str, ...] | None  # parameter names in the driver's order (None: by name)
    constants: dict[str, Any]  # the values of literals the facts' queries hold
    processors: Mapping[str, Callable[[Any], Any]]  # how the driver gets typed values (times)
    widths: tuple[int, ...]  # columns of each fact


_STATEMENTS: dict[tuple[Any, ...], _Statement] = {}
_COMPILING = threading.Lock()


def _statement(engine: Engine, facts: Sequence[Fact]) -> _Statement:
    """The statement reading these facts, compiled once per shape of facts and dialect."""
    dialect = engine.dialect
    key = (dialect.name, dialect.paramstyle, tuple(fact.shape for fact in facts))
    found = _STATEMENTS.get(key)
    if found is not None:
        return found
    columns: list[ColumnElement[Any]] = []
    widths = []
    for index, fact in enumerate(facts):
        def bind(name: str, type_: Any = None, index: int = index) -> Any:
            if name == "tenant":
                return bindparam("tenant", value=None, type_=Integer())
            return bindparam(f"f{index}_{name}", value=None, type_=type_)
        made = fact.columns(bind, dialect.name)
        widths.append(len(made))
        columns += made
    # Lists of literals (IN ...) are written out now: every statement of a shape is the same.
    compiled = select(*[c.label(f"c{n}") for n, c in enumerate(columns)]).compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True})
    defaults = compiled.construct_params()
    processors = {name: proc for name, param in compiled.binds.items() if name in defaults
                  and (proc := param.type.dialect_impl(dialect).bind_processor(dialect))}
    statement = _Statement(
        compiled.string, tuple(compiled.positiontup or ()) if compiled.positional else None,
        {name: value for name, value in defaults.items()
         if name != "tenant" and not name.startswith("f")},
        processors, tuple(widths))
    with _COMPILING:
        _STATEMENTS[key] = statement
    return statement


def _parameters(statement: _Statement, facts: Sequence[Fact], tenant_id: int) -> Any:
    values: dict[str, Any] = {**statement.constants, "tenant": tenant_id}
    for index, fact in enumerate(facts):
        for name, value in fact.params().items():
            values[f"f{index}_{name}"] = value
    for name, process in statement.processors.items():
        values[name] = process(values[name])
    return values if statement.order is None else tuple(values[n] for n in statement.order)


@dataclass(frozen=True)
class Reading:
    """Some facts with their statement and parameters, ready to be read again as they are.

    Why: a cached view reads the same facts on every hit; binding their parameters anew each
    time was a tenth of a hit's work. Facts whose parameters move with the clock get them anew.
    """

    facts: tuple[Fact, ...]
    tenant_id: int
    statement: _Statement
    params: Any  # None when a fact's parameters move with the clock


def reading(engine: Engine, tenant_id: int, facts: Sequence[Fact]) -> Reading:
    """The statement and parameters that read these facts of the tenant."""
    statement = _statement(engine, facts)
    moving = any(fact.moving for fact in facts)
    return Reading(tuple(facts), tenant_id, statement,
                   None if moving else _parameters(statement, facts, tenant_id))


def read(engine: Engine, tenant_id: int, facts: Sequence[Fact]) -> tuple[Any, ...]:
    """The value of each fact now, in one statement."""
    if not facts:
        return ()
    return read_again(engine, reading(engine, tenant_id, facts))


def read_again(engine: Engine, prepared: Reading) -> tuple[Any, ...]:
    """The value of each fact of a prepared reading now, in one statement."""
    statement = prepared.statement
    params = prepared.params
    if params is None:
        params = _parameters(statement, prepared.facts, prepared.tenant_id)
    row = _fetch(engine, statement.sql, params)
    values, start = [], 0
    for fact, width in zip(prepared.facts, statement.widths, strict=True):
        values.append(fact.value(row[start:start + width]))
        start += width
    return tuple(values)


_LOCAL = threading.local()


def _fetch(engine: Engine, sql: str, params: Any) -> Sequence[Any]:
    own = _own_connection(engine)
    if own is not None:
        try:
            return own.execute(sql, params).fetchall()[0]
        except Exception:
            _LOCAL.connections.pop(engine, None)  # a broken connection is not used again
            raise
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        cursor.execute(sql, params)
        row = cursor.fetchone()
        cursor.close()
    finally:
        conn.close()  # back to the pool
    return tuple(row or ())


def _own_connection(engine: Engine) -> Any | None:
    """This thread's own SQLite connection for fact reads, or None (use the pool).

    Why: a cached view's one query cost less than the pool's checkout and reset around it. Only
    for a SQLite file (QueuePool): a plain SELECT there runs in autocommit, so every read sees
    the latest commit, and draining the rows ends its read transaction. PostgreSQL reads keep
    the pool (a SELECT there would hold a snapshot until rolled back; pre-ping replaces dead
    links).
    """
    if engine.dialect.name != "sqlite" or not isinstance(engine.pool, QueuePool):
        return None
    connections = getattr(_LOCAL, "connections", None)
    if connections is None:
        connections = _LOCAL.connections = weakref.WeakKeyDictionary()
    conn = connections.get(engine)
    if conn is None:
        fairy = engine.raw_connection()  # opened with the engine's pragmas (WAL, busy timeout)
        fairy.detach()  # ours from now on: the pool opens another when it needs one
        conn = connections[engine] = fairy.dbapi_connection
    return conn


def wall_to_monotonic(when: datetime) -> float:
    """A wall-clock moment on the monotonic clock (for expiries noted by renders)."""
    return time.monotonic() + (when - utcnow()).total_seconds()

