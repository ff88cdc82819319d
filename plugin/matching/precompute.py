"""Stored suggestions: computed by a worker after an item changes, served to panels without a query.

Panels still apply `visible` and `eligible` when they read, since permissions and opt-outs can
change after the suggestions were computed.
"""
from __future__ import annotations

import functools
from dataclasses import fields
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, select
from sqlalchemy.orm import Session

from connect.db import utcnow
from plugin.matching.experts import Evidence, ExpertSuggestion
from plugin.matching.reuse import ReuseSuggestion
from plugin.matching.service import suggest_experts, suggest_reuse
from plugin.matching.store import hold_seq, insert_for
from plugin.models.content import Contribution, IndexState, Item, StoredSuggestion
from plugin.search.sites import of_site

STORED = 10  # more than a panel shows, so read-time filtering still leaves enough


_SUGGESTIONS = cast(Table, StoredSuggestion.__table__)


@functools.cache
def _upsert(dialect: str) -> Insert:
    """The upsert of an item's stored suggestions, built once per kind of database."""
    insert = insert_for(dialect, _SUGGESTIONS)
    return insert.on_conflict_do_update(
        index_elements=["tenant_id", "item_id", "kind"],
        set_={"payload": insert.excluded.payload, "index_seq": insert.excluded.index_seq,
              "computed_at": insert.excluded.computed_at})


def _store(session: Session, tenant_id: int, item_id: int, payloads: dict[str, list[dict[str, Any]]],
           seq: int) -> None:
    # One upsert, not read-then-insert: two workers refreshing the same item at once would
    # otherwise both insert and one would fail on the (tenant, item, kind) key. Built once, the
    # rows bound when it runs: built around each refresh's rows, it cost more than writing them.
    now = utcnow()
    rows = [{"tenant_id": tenant_id, "item_id": item_id, "kind": kind, "payload": payload,
             "index_seq": seq, "computed_at": now} for kind, payload in payloads.items()]
    connection = session.connection()
    connection.execute(_upsert(connection.dialect.name), rows)


# Built once: every refresh reads them.
_ITEM = select(Item).where(Item.tenant_id == bindparam("tenant"), Item.id == bindparam("item"))
_SEQ = select(IndexState.seq).where(IndexState.tenant_id == bindparam("tenant"))


def refresh_suggestions(session: Session, tenant_id: int, item_id: int) -> list[int] | None:
    """Compute and store the top reuse and expert candidates for an item (idempotent); the ids of
    its reuse suggestions, best first, or None when the tenant has no such item."""
    item = session.scalar(_ITEM, {"tenant": tenant_id, "item": item_id})
    if item is None:
        return None
    seq = session.scalar(_SEQ, {"tenant": tenant_id}) or 0
    reuse = suggest_reuse(session, tenant_id, item, limit=STORED)
    experts = suggest_experts(session, tenant_id, item, limit=STORED, min_confidence=0.0)
    hold_seq(session, tenant_id)
    experts = _still_credited(session, tenant_id, experts)
    _store(session, tenant_id, item_id, {"reuse": [_plain(s) for s in reuse],
                                         "experts": [_plain(s) for s in experts]}, seq)
    session.flush()
    return [s.item_id for s in reuse]


def _still_credited(session: Session, tenant_id: int,
                    experts: list[ExpertSuggestion]) -> list[ExpertSuggestion]:
    """The experts who still have work on the site, read under the sequence lock.

    Someone erased (or uncredited) while this refresh ranked them had their stored entries
    removed already: stored now, they would be suggested again, and named in the database.
    """
    accounts = [e.account_id for e in experts]
    if not accounts:
        return experts
    credited = set(session.scalars(select(Contribution.account_id).distinct().where(
        of_site(Contribution.tenant_id, tenant_id), Contribution.account_id.in_(accounts))))
    return [e for e in experts if e.account_id in credited]


_FIELDS: dict[type, tuple[str, ...]] = {kind: tuple(f.name for f in fields(kind))
                                         for kind in (ReuseSuggestion, ExpertSuggestion, Evidence)}
_NAMES = {kind: frozenset(names) for kind, names in _FIELDS.items()}


def _plain(value: ReuseSuggestion | ExpertSuggestion | Evidence) -> dict[str, Any]:
    """A suggestion as stored: its fields, its evidence as plain entries too."""
    # Not dataclasses.asdict: it deep-copies every list, which nothing here needs.
    out = {name: getattr(value, name) for name in _FIELDS[type(value)]}
    if "evidence" in out:
        out["evidence"] = [_plain(e) for e in out["evidence"]]
    return out


def _known(kind: type, entry: dict[str, Any]) -> dict[str, Any]:
    """The entry's fields the dataclass has: a row written by a newer release still loads here."""
    names = _NAMES[kind]
    return {k: v for k, v in entry.items() if k in names}


def _expert(entry: dict[str, Any]) -> ExpertSuggestion:
    evidence = [Evidence(**_known(Evidence, e)) for e in entry.get("evidence", [])]
    return ExpertSuggestion(**{**_known(ExpertSuggestion, entry), "evidence": evidence})


_STORED = select(StoredSuggestion.kind, StoredSuggestion.payload).where(
    StoredSuggestion.tenant_id == bindparam("tenant"), StoredSuggestion.item_id == bindparam("item"))


def stored_suggestions(session: Session, tenant_id: int, item_id: int) -> dict[str, list[Any]] | None:
    """{"reuse": [ReuseSuggestion], "experts": [ExpertSuggestion]} as last stored, or None."""
    # Plain rows, not ORM objects: they are written by Core upserts (an identity map would keep
    # what it read first), and a panel reads them at every render.
    rows = session.execute(_STORED, {"tenant": tenant_id, "item": item_id}).all()
    if not rows:
        return None
    found: dict[str, list[Any]] = {"reuse": [], "experts": []}
    for kind, payload in rows:
        if kind == "reuse":
            found["reuse"] = [ReuseSuggestion(**_known(ReuseSuggestion, entry)) for entry in payload or []]
        elif kind == "experts":
            found["experts"] = [_expert(entry) for entry in payload or []]
    return found
