"""The slice of JQL and CQL the sandbox site understands; anything else is a 400 as on a real site."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_CLAUSE = re.compile(
    r"""\s*(?P<field>[A-Za-z][\w.]*)\s*(?P<op>>=|<=|!=|=|>|<|~|\bnot\s+in\b|\bin\b)\s*
        (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\([^)]*\)|[^\s()]+)\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_ORDER = re.compile(r"\border\s+by\b", re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")
_RELATIVE = re.compile(r"^-?(\d+)([wdhm])$")


class QueryError(ValueError):
    """A query the sandbox site does not understand (the host answers 400)."""


@dataclass
class Clause:
    field: str
    op: str
    values: list[str]


@dataclass
class Query:
    clauses: list[Clause] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)


def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _values(raw: str) -> list[str]:
    if raw.startswith("("):
        return [_unquote(part) for part in raw[1:-1].split(",") if part.strip()]
    return [_unquote(raw)]


def parse(text: str) -> Query:
    """Clauses joined by AND, then an optional ORDER BY list."""
    query = Query()
    parts = _ORDER.split(text, maxsplit=1)
    where = parts[0].strip()
    if where:
        for chunk in _AND.split(where):
            match = _CLAUSE.fullmatch(chunk)
            if not match:
                raise QueryError(f"Error in the query: cannot parse '{chunk.strip()}'")
            op = " ".join(match["op"].lower().split())
            query.clauses.append(Clause(match["field"].lower(), op, _values(match["value"])))
    if len(parts) == 2:
        for item in parts[1].split(","):
            words = item.split()
            if not words or len(words) > 2 or (len(words) == 2
                                               and words[1].lower() not in ("asc", "desc")):
                raise QueryError(f"Error in the ORDER BY clause: '{item.strip()}'")
            query.order.append((words[0].lower(), len(words) == 2 and words[1].lower() == "desc"))
    return query


def parse_date(value: str, now: datetime | None = None) -> datetime:
    """A JQL/CQL date literal ('yyyy-MM-dd HH:mm', 'yyyy/MM/dd', '-5d'), read as UTC."""
    relative = _RELATIVE.match(value.strip())
    if relative:
        unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[relative[2]]
        return (now or datetime.now(UTC)) - timedelta(**{unit: int(relative[1])})
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise QueryError(f"Date value '{value}' is invalid: use 'yyyy-MM-dd HH:mm' or 'yyyy-MM-dd'")


def compare(actual: Any, op: str, values: list[Any]) -> bool:
    """Apply a JQL/CQL operator to one value (strings compare case-insensitively)."""
    def norm(value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    actual, values = norm(actual), [norm(v) for v in values]
    if op in ("=", "in"):
        return actual in values
    if op in ("!=", "not in"):
        return actual not in values
    if op == "~":
        return isinstance(actual, str) and all(w in actual for w in str(values[0]).split())
    if actual is None:
        return False
    target = values[0]
    return {">": actual > target, ">=": actual >= target,
            "<": actual < target, "<=": actual <= target}[op]


def matcher(query: Query, resolve: Callable[[Clause], Callable[[Any], bool]]
            ) -> Callable[[Any], bool]:
    """A predicate that holds when every clause holds (resolve turns a clause into a test)."""
    tests = [resolve(clause) for clause in query.clauses]
    return lambda item: all(test(item) for test in tests)
