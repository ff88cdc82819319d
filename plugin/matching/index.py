"""In-memory BM25F index per tenant: a process-local cache synced from the database.

The database is the truth (items carry their term vectors and a per-tenant change sequence);
each process keeps one `TenantIndex` per tenant and, before every query, applies the changes
committed since the sequence it last saw, deletions included. So a worker's update is visible
to every web process on its next query, and no process holds state another one needs.
"""
from __future__ import annotations

import functools
import gc
import logging
import math
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, pairwise
from typing import Any

import numpy as np
import orjson
from sqlalchemy import DateTime, Engine, String, Text, bindparam, cast, exists, select, type_coerce
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from plugin.matching.people import SlotPeople
from plugin.matching.vectors import FIELDS
from plugin.models.content import Contribution, IndexState, IndexTombstone, Item

log = logging.getLogger(__name__)
K1 = 1.2
FIELD_WEIGHTS = np.array([2.5, 1.0, 0.4, 1.5], dtype=np.float32)  # title, body, comments, meta
FIELD_B = np.array([0.3, 0.75, 0.75, 0.3], dtype=np.float32)
# The cosine view of an item is its statement: title twice, body and meta; discussion is left out.
COSINE_WEIGHTS = np.array([2.0, 1.0, 0.0, 1.0], dtype=np.float32)
_NF = len(FIELDS)
# A process that has applied this many changes since the last snapshot (and at least this share
# of the index) writes a new one, so fresh processes replay a short tail, not the whole tenant.
SNAPSHOT_AFTER = 20_000
SNAPSHOT_SHARE = 0.25
# While a tenant's items keep changing (a backfill), a snapshot would be stale within seconds and
# writing it costs seconds of CPU the backfill needs: it waits until the tenant has been still
# this long (the follow thread writes it then), unless half the index is newer than its snapshot.
SNAPSHOT_QUIET = 10.0
# BM25F's length normalisation keeps the average lengths it was computed with until they drift
# this much, so an added item does not make every cached posting weight stale.
LENGTH_DRIFT = 0.01
_EMPTY_F32 = np.empty(0, dtype=np.float32)
# Term frequencies are stored as 16-bit counts (capped, as snapshots always did): postings are
# the bulk of the index's memory.
TF_TYPE = np.uint16
TF_MAX = 65535
_EMPTY_SLOTS = np.empty(0, dtype=np.intp)
_NO_TERMS: dict[str, int] = {}
WARM_CHUNK = 1_000_000  # postings per pass of `warm`: bounded temporary arrays
# A sync that follows at most this many commits reads the changed items in one go: a webhook's
# update or a few, never a backfill's pages (which are streamed).
FEW_COMMITS = 8
BATCH = 5000  # items read and put per step (a full load's length sums depend on it: keep it fixed)
# All postings of a full load, grouped by term: (slots, tf rows, each term's start; one past the last).
Flat = tuple[np.ndarray, np.ndarray, np.ndarray]
# The sequence and whether anything was deleted since, in one round trip (built once: a query
# checks it twice, and building the statement cost more than running it).
_STATE = select(IndexState.seq, exists().where(IndexTombstone.tenant_id == bindparam("tenant"),
                                               IndexTombstone.seq > bindparam("seq"))
                ).where(IndexState.tenant_id == bindparam("tenant"))


class Vocabulary(dict[str, int]):
    """Term -> term id; looking up an unknown term with [] gives it the next id.

    So mapping a batch's terms to ids is one pass in C, with Python only for the new terms.
    """

    def __missing__(self, term: str) -> int:
        tid = self[term] = len(self)
        return tid


class _Postings:
    """Slots holding a term and its frequency per field; appends wait in lists until a query.

    Slots are kept as `np.intp`: numpy's scatter-add converts any other index type on every call.
    The per-slot weights a query needs (saturated BM25F tf, statement tf, title presence) are
    cached; appended slots only extend them, so an index change costs no full recomputation.
    """

    __slots__ = ("_bm25", "_bm25_basis", "_cosine", "_title", "_title_of", "pending", "slots", "tf")

    def __init__(self, slots: np.ndarray | None = None, tf: np.ndarray | None = None) -> None:
        self.slots = np.empty(0, dtype=np.intp) if slots is None else slots.astype(np.intp, copy=False)
        self.tf = np.empty((0, _NF), dtype=TF_TYPE) if tf is None else tf
        # Appended (slots, tf) pairs; None, not an empty list, while there are none: a tenant has
        # tens of thousands of terms and most never get an append.
        self.pending: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._clear_weights()

    def _clear_weights(self) -> None:
        self._cosine = _EMPTY_F32
        self._bm25 = _EMPTY_F32
        self._bm25_basis = -1
        self._title = _EMPTY_SLOTS
        self._title_of = 0  # how many postings `_title` was made from

    def add(self, slots: np.ndarray, tf: np.ndarray) -> None:
        """Append (ascending, new) slots and their tf rows."""
        if self.pending is None:
            self.pending = []
        self.pending.append((slots, tf))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(slots, tf per field), pending appends merged in."""
        if self.pending:
            self.slots = np.concatenate([self.slots, *(s for s, _ in self.pending)]).astype(np.intp, copy=False)
            self.tf = np.concatenate([self.tf, *(tf for _, tf in self.pending)])
            self.pending = None
        return self.slots, self.tf

    def bm25_tf(self, norms: np.ndarray, basis: int) -> np.ndarray:
        """Saturated BM25F tf of each slot under the index's length basis (new slots computed on demand)."""
        slots, tf = self.arrays()
        done = len(self._bm25) if self._bm25_basis == basis else 0
        if done < len(slots):
            tail = bm25_saturated(tf[done:], norms[slots[done:]])
            self._bm25 = np.concatenate([self._bm25[:done], tail]) if done else tail
            self._bm25_basis = basis
        return self._bm25

    def cosine_tf(self) -> np.ndarray:
        """Sublinear tf of each slot's statement (0 where the term is only in comments), cached."""
        slots, tf = self.arrays()
        done = len(self._cosine)
        if done < len(slots):
            tail = statement_tf(tf[done:])
            self._cosine = np.concatenate([self._cosine, tail]) if done else tail
        return self._cosine

    def title_slots(self) -> np.ndarray:
        """The slots whose title has the term, cached from the first call (few terms are ever asked)."""
        slots, tf = self.arrays()
        if self._title_of != len(slots):
            self._title, self._title_of = slots[tf[:, 0] > 0], len(slots)
        return self._title

    def keep(self, alive: np.ndarray, remap: np.ndarray) -> None:
        slots, tf = self.arrays()
        mask = alive[slots]
        self.slots = remap[slots[mask]].astype(np.intp)
        self.tf = tf[mask]
        # Weights are per posting, not per slot number: the live ones stay valid.
        cosine, bm25 = self._cosine, self._bm25
        self._cosine = cosine[mask] if len(cosine) == len(mask) else _EMPTY_F32
        self._bm25 = bm25[mask] if len(bm25) == len(mask) else _EMPTY_F32
        self._title, self._title_of = _EMPTY_SLOTS, 0

    def preset(self, bm25: np.ndarray, cosine: np.ndarray, basis: int) -> None:
        """Take weights computed for all of this term's slots at once (see `TenantIndex.warm`)."""
        self._bm25, self._cosine, self._bm25_basis = bm25, cosine, basis


def bm25_saturated(tf: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """BM25F's saturated tf of postings from their tf rows and their slots' length norms."""
    weighted = (tf / norms) @ FIELD_WEIGHTS
    return (weighted / (K1 + weighted)).astype(np.float32)


def statement_tf(tf: np.ndarray) -> np.ndarray:
    """Sublinear tf of postings' statement fields (0 where the term is only in comments)."""
    weighted = tf @ COSINE_WEIGHTS
    return np.where(weighted > 0, 1.0 + np.log(np.maximum(weighted, 1e-9)), 0.0).astype(np.float32)


@dataclass(slots=True)
class DocInfo:
    """What ranking needs about a slot besides its terms."""

    item_id: int
    resolved: bool
    helpful: int
    not_relevant: int
    created: float


class TenantIndex:
    """One tenant's inverted index; `sync` brings it up to the database's change sequence."""

    def __init__(self, tenant_id: int) -> None:
        self.tenant_id = tenant_id
        self.lock = threading.RLock()
        self.seq = -1
        self.unsaved = 0  # changes applied since the last snapshot this process knows of
        self.changed_at = 0.0  # monotonic time of the last sync that applied changes to a loaded index
        self._clear()

    def _clear(self) -> None:
        self.vocab = Vocabulary()
        self.postings: list[_Postings] = []
        self.df: list[int] = []
        self.slot_of: dict[int, int] = {}
        self.slot_terms: list[np.ndarray] = []
        self.docs: list[DocInfo | None] = []
        self.lens = np.zeros((16, _NF), dtype=np.float32)
        self.alive = np.zeros(16, dtype=bool)
        self.len_sum = np.zeros(_NF, dtype=np.float64)
        self.norms = np.ones(16, dtype=np.float32)
        self.norm_basis = 0
        self.count = 0
        self.people = SlotPeople()
        self._norm_key: tuple[int, int, int] | None = None
        self._basis_avg: np.ndarray | None = None  # the average field lengths BM25F normalises by
        self._basis = 0  # bumped whenever `_basis_avg` moves: cached BM25F weights are then stale
        self._layout = 0  # bumped by compaction, which renumbers slots
        self._warm = False
        # Recent rankings by target, valid while `seq` is in their key (a small LRU).
        self.recent: dict[tuple, tuple[dict[str, float], list[tuple[int, float]]]] = {}
        self._norm_cache = np.empty((0, _NF), dtype=np.float32)
        self._title_root = np.empty(0, dtype=np.float32)  # square root of each slot's title length

    # ---------- sync ----------

    def sync(self, session: Session) -> None:
        """Apply every change committed since the last sync (a full load the first time)."""
        with self.lock:
            row = session.execute(_STATE, {"tenant": self.tenant_id, "seq": self.seq}).first()
            seq = (row[0] or 0) if row else 0
            if seq == self.seq:
                return
            if seq < self.seq:  # the database was reset under us: start over
                self._clear()
                self.seq = -1
            if row and row[1]:
                self._apply_tombstones(session)
            with _collector_paused():
                self._apply(session, seq)

    def _apply(self, session: Session, seq: int) -> None:
        if self.seq < 0:
            self._load(session)
        else:
            self._apply_items(session, stream=seq - self.seq > FEW_COMMITS)
            self.changed_at = time.monotonic()
        self.seq = seq
        if len(self.docs) > 1000 and self.count < 0.7 * len(self.docs):
            self._compact()
        if self.count > 2 * self.norm_basis:
            self._renorm()
        if not self._warm:
            self.warm()

    def _apply_tombstones(self, session: Session) -> None:
        if self.seq < 0:
            return
        rows = session.scalars(select(IndexTombstone.item_id).where(
            IndexTombstone.tenant_id == self.tenant_id, IndexTombstone.seq > self.seq))
        for item_id in rows:
            self.remove(item_id)
            self.unsaved += 1

    def _load(self, session: Session) -> None:
        """The first sync: every item, each term's postings placed once in one array per tenant.

        Batches are grouped by term as `put_many` does, but merged at the end rather than appended
        to each term's list per batch; norms and query weights are then computed over all at once.
        """
        connection = session.connection()
        item, accounts, roles, at = _contributions(connection, self.tenant_id, self.seq)
        parts = []
        for infos, vectors in _item_batches(connection, self.tenant_id, self.seq, stream=True):
            slot, ptid, ptf = self._stage(infos, vectors)
            parts.append((slot, ptid.astype(np.int32), np.minimum(ptf, TF_MAX).astype(TF_TYPE)))
            self.unsaved += len(infos)
        flat = self._install(parts)
        self._put_all_people(np.asarray(item, dtype=np.int64), accounts, roles, at)
        statement = self._warm_flat(flat)
        if self.count:
            self._renorm(flat, statement)

    def _put_all_people(self, item: np.ndarray, accounts: Sequence[str], roles: Sequence[str],
                        at: Sequence[float]) -> None:
        """A full load's contribution columns (in query order) given to their items' slots."""
        n = len(self.docs)
        if not n:
            return
        ids = np.fromiter((doc.item_id for doc in self.docs), dtype=np.int64, count=n)  # ascending
        slots = np.searchsorted(ids, item)
        order = stable_argsort(slots, n + 1)  # each item's rows keep the query's order
        # Rows of an item deleted between the two reads have no slot.
        order = order[(slots[order] < n) & (ids[np.minimum(slots[order], n - 1)] == item[order])]
        self.people.put_many(slots[order], _objects(accounts)[order], _objects(roles)[order],
                             np.asarray(at, dtype=np.float64)[order], range(n))

    def _install(self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Flat:
        """Make every term's postings from a full load's batches (each sorted by term, then slot)."""
        if not parts:
            return _EMPTY_SLOTS, np.empty((0, _NF), dtype=TF_TYPE), np.zeros(1, dtype=np.int64)
        ptid = np.concatenate([p[1] for p in parts])
        # Stable: each term's slots stay ascending (batches hold ascending slots); sorted runs merge fast.
        order = stable_argsort(ptid, len(self.vocab))
        slots = np.concatenate([p[0] for p in parts])[order]
        tf = np.concatenate([p[2] for p in parts])[order]
        counts = np.bincount(ptid, minlength=len(self.vocab))
        ptr = np.concatenate([[0], np.cumsum(counts)])
        self.df = counts.tolist()
        # Views into the tenant's one array: no per-term copy (an update replaces its term's views).
        self.postings = [_Postings(slots[a:b], tf[a:b]) for a, b in pairwise(ptr.tolist())]
        return slots, tf, ptr

    def _apply_items(self, session: Session, stream: bool) -> None:
        connection = session.connection()
        item, accounts, roles, at = _contributions(connection, self.tenant_id, self.seq)
        first = len(self.docs)
        for infos, vectors in _item_batches(connection, self.tenant_id, self.seq, stream):
            self._put_terms(infos, vectors)
            self.unsaved += len(infos)
        # Who worked on the new slots, from the columns as read: one pass for the whole sync
        # rather than rows regrouped per item. Rows of an item deleted since they were read have no slot.
        slot_of = self.slot_of
        slots = np.fromiter((slot_of.get(i, -1) for i in item), dtype=np.int64, count=len(item))
        mine = np.flatnonzero(slots >= first)
        self.people.put_many(slots[mine], _objects(accounts)[mine], _objects(roles)[mine],
                             np.asarray(at, dtype=np.float64)[mine], range(first, len(self.docs)))

    # ---------- changes ----------

    def put(self, info: DocInfo, terms: dict[str, dict[str, int]],
            people: Any = (), norm: bool = True) -> None:
        """Add or replace an item's vector and who worked on it ((account, role, at) rows)."""
        self.put_many([(info, terms, people)], norm)

    def put_many(self, entries: list[tuple[DocInfo, dict[str, dict[str, int]], Any]],
                 norm: bool = True) -> None:
        """Add or replace many items: (info, term vector, (account, role, at) rows) each."""
        if not entries:
            return
        first = len(self.docs)
        self._put_terms([info for info, _, _ in entries], [terms for _, terms, _ in entries], norm)
        self._put_people(entries, first)

    def _put_terms(self, infos: list[DocInfo], vectors: list[dict[str, dict[str, int]]],
                   norm: bool = True) -> None:
        """Add or replace items' term vectors and ranking facts; who worked on them is put separately.

        The term vectors are flattened into arrays and grouped by term with one sort, so the
        per-term work in Python is one append per distinct term of the batch, not per item.
        """
        for info in infos:
            self.remove(info.item_id)
        first, n = len(self.docs), len(infos)
        slot, ptid, ptf = self._stage(infos, vectors)
        self._add_postings(slot, ptid, ptf)
        self.norms[first:first + n] = self._norms(slot, ptid, ptf, first, n) if norm else 1.0

    def _stage(self, infos: list[DocInfo], vectors: list[dict[str, dict[str, int]]]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Give new items the next slots (terms, lengths, facts); their postings grouped by term."""
        first, n = len(self.docs), len(infos)
        self._grow(first + n)
        tids, tf, sizes = self._flatten(vectors)
        cell = np.repeat(np.arange(n * _NF), sizes)  # (slot - first) * fields + field per entry
        self.lens[first:first + n] = np.bincount(cell, weights=tf, minlength=n * _NF).reshape(n, _NF)
        slot, ptid, ptf = self._group(tids, cell, tf, first + n, first)
        # Each slot's terms in order: unique keys, so a sort of the values does (numpy's is fast).
        stride = len(self.vocab) + 1
        by_slot = np.sort((slot - first) * stride + ptid) % stride
        per_slot = np.bincount(slot - first, minlength=n)
        self.slot_terms.extend(_runs(by_slot.astype(np.int32), per_slot))
        for i, info in enumerate(infos):
            self.docs.append(info)
            self.slot_of[info.item_id] = first + i
        self.alive[first:first + n] = True
        self.len_sum += self.lens[first:first + n].sum(axis=0)
        self.count += n
        return slot, ptid, ptf

    def _flatten(self, vectors: list[dict[str, dict[str, int]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term id, tf) of every (item, field, term), and how many terms each (item, field) has.

        Iterators all the way: no list of every term occurrence, and the per-occurrence work in C.
        """
        vocab = self.vocab
        fields = [terms.get(field) or _NO_TERMS for terms in vectors for field in FIELDS]
        sizes = np.fromiter(map(len, fields), dtype=np.int64, count=len(fields))
        total = int(sizes.sum())
        # New terms get the next ids in order of first appearance (`Vocabulary.__missing__`).
        tids = np.fromiter(map(vocab.__getitem__, chain.from_iterable(fields)), dtype=np.int64, count=total)
        tfs = np.fromiter(chain.from_iterable(map(dict.values, fields)), dtype=np.float32, count=total)
        grown = len(vocab) - len(self.postings)
        self.postings.extend([None] * grown)  # type: ignore[list-item]  # made by _add_postings
        self.df.extend([0] * grown)
        return tids, tfs, sizes

    @staticmethod
    def _group(tids: np.ndarray, cell: np.ndarray, tf: np.ndarray, stride: int,
               first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One posting per (term, slot), sorted by term then slot: (slots, term ids, tf rows)."""
        key = tids * stride + (cell // _NF + first)
        order = stable_argsort(key, (int(tids.max(initial=0)) + 1) * stride)
        key = key[order]
        fresh = np.ones(len(key), dtype=bool)
        fresh[1:] = key[1:] != key[:-1]
        posting = np.cumsum(fresh) - 1
        ptf = np.zeros((int(fresh.sum()), _NF), dtype=np.float32)
        ptf[posting, cell[order] % _NF] = tf[order]
        unique = key[fresh]
        return (unique % stride).astype(np.intp), unique // stride, ptf

    def _add_postings(self, slot: np.ndarray, ptid: np.ndarray, ptf: np.ndarray) -> None:
        if not len(ptid):
            return
        starts = np.flatnonzero(np.r_[True, ptid[1:] != ptid[:-1]])
        ends = np.r_[starts[1:], len(ptid)]
        postings, df = self.postings, self.df
        ptf = np.minimum(ptf, TF_MAX).astype(TF_TYPE)
        for tid, a, b in zip(ptid[starts].tolist(), starts.tolist(), ends.tolist()):
            known = postings[tid]
            if known is None:
                postings[tid] = _Postings(slot[a:b], ptf[a:b])
            else:
                known.add(slot[a:b], ptf[a:b])
            df[tid] += b - a

    def _norms(self, slot: np.ndarray, ptid: np.ndarray, ptf: np.ndarray, first: int, n: int) -> np.ndarray:
        """Cosine norms of new slots, each with the idf as of its own arrival (as one-by-one puts had)."""
        starts = np.flatnonzero(np.r_[True, ptid[1:] != ptid[:-1]]) if len(ptid) else ptid
        size = np.diff(np.r_[starts, len(ptid)])
        rank = np.arange(len(ptid)) - np.repeat(starts, size) + 1  # this slot's place among the batch's
        df_now = np.array([self.df[t] for t in ptid[starts].tolist()], dtype=np.float64)
        df = np.repeat(df_now - size, size) + rank
        count = (self.count - n) + (slot - first).astype(np.float64)  # the corpus before this slot
        weighted = ptf.astype(np.float64) @ COSINE_WEIGHTS.astype(np.float64)
        mask = weighted > 0
        idf = np.log((1.0 + count[mask]) / (1.0 + df[mask])) + 1.0
        terms = ((1.0 + np.log(weighted[mask])) * idf) ** 2
        norms = np.sqrt(np.bincount(slot[mask] - first, weights=terms, minlength=n))
        return np.where(norms > 0, norms, 1.0)

    def _put_people(self, entries: list[tuple[DocInfo, Any, Any]], first: int) -> None:
        rows = [(first + i, *row) for i, (_, _, people) in enumerate(entries) for row in people]
        slots, accounts, roles, when = zip(*rows) if rows else ((), (), (), ())
        at = [w if isinstance(w, float) else w.timestamp() for w in when]
        self.people.put_many(slots, accounts, roles, at, range(first, first + len(entries)))

    def _renorm(self, flat: Flat | None = None, statement: np.ndarray | None = None) -> None:
        """Recompute every cosine norm with today's idf (they drift as the corpus grows).

        A full load passes its postings (`flat`) and their statement tf, which `warm` computed.
        """
        n = len(self.docs)
        total = np.zeros(n, dtype=np.float64)
        df = np.asarray(self.df, dtype=np.float64)
        idf = np.where(df > 0, np.log((1.0 + self.count) / (1.0 + np.maximum(df, 0))) + 1.0, 0.0)
        for lo, a, slots, tf, sizes in self._term_chunks(flat, 20_000):  # bounded temporary arrays
            weights = statement_tf(tf) if statement is None else statement[a:a + len(slots)]
            owner = np.repeat(idf[lo:lo + len(sizes)], sizes)
            mask = weights > 0
            total += np.bincount(slots[mask], weights=(weights[mask] * owner[mask]) ** 2, minlength=n)
        self.norms[:n] = np.maximum(np.sqrt(total), 1e-6)
        self.norm_basis = self.count

    def _term_chunks(self, flat: Flat | None, step: int
                     ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
        """(first term id, first posting, slots, tf rows, postings per term) of `step` terms at a time."""
        if flat is not None:
            slots, tf, ptr = flat
            for lo in range(0, len(ptr) - 1, step):
                a, b = int(ptr[lo]), int(ptr[min(lo + step, len(ptr) - 1)])
                yield lo, a, slots[a:b], tf[a:b], np.diff(ptr[lo:lo + step + 1])
            return
        for lo in range(0, len(self.postings), step):
            chunk = [p.arrays() for p in self.postings[lo:lo + step]]
            if chunk:
                yield (lo, 0, np.concatenate([c[0] for c in chunk]), np.concatenate([c[1] for c in chunk]),
                       np.array([len(c[0]) for c in chunk]))

    def remove(self, item_id: int) -> None:
        """Forget an item (its postings stay until compaction, masked as dead)."""
        slot = self.slot_of.pop(item_id, None)
        if slot is None:
            return
        for tid in self.slot_terms[slot]:
            self.df[tid] -= 1
        self.slot_terms[slot] = np.empty(0, dtype=np.int32)
        self.people.remove(slot)
        self.alive[slot] = False
        self.docs[slot] = None
        self.len_sum -= self.lens[slot]
        self.count -= 1

    def update_info(self, item_id: int, **changes: Any) -> None:
        """Change ranking facts of an item (feedback counts) without touching its terms."""
        slot = self.slot_of.get(item_id)
        if slot is not None and self.docs[slot] is not None:
            for name, value in changes.items():
                setattr(self.docs[slot], name, value)

    def _grow(self, size: int) -> None:
        if size <= len(self.alive):
            return
        capacity = max(size, len(self.alive) * 2)
        self.lens = np.resize(self.lens, (capacity, _NF))
        alive = np.zeros(capacity, dtype=bool)
        alive[: len(self.alive)] = self.alive
        self.alive = alive
        self.norms = np.resize(self.norms, capacity)
        self.people.grow(capacity)

    def _compact(self) -> None:
        """Drop dead slots from every posting list and renumber the live ones."""
        n = len(self.docs)
        alive = self.alive[:n]
        remap = np.cumsum(alive) - 1
        for postings in self.postings:
            postings.keep(alive, remap)
        keep = np.flatnonzero(alive)
        self.people.compact(keep)
        self.docs = [self.docs[i] for i in keep]
        self.slot_terms = [self.slot_terms[i] for i in keep]
        self.lens = self.lens[:n][alive].copy()
        self.norms = self.norms[:n][alive].copy()
        self.alive = np.ones(len(keep), dtype=bool)
        self._layout += 1
        self.slot_of = {doc.item_id: i for i, doc in enumerate(self.docs) if doc is not None}

    # ---------- queries ----------

    def idf(self, term: str) -> float:
        """BM25 inverse document frequency of a term (0 for unknown terms)."""
        tid = self.vocab.get(term)
        if tid is None or self.df[tid] <= 0:
            return 0.0
        df = self.df[tid]
        return math.log(1.0 + (self.count - df + 0.5) / (df + 0.5))

    def cosine_idf(self, term: str) -> float:
        """Smoothed tf-idf inverse document frequency (0 for unknown terms)."""
        tid = self.vocab.get(term)
        if tid is None or self.df[tid] <= 0:
            return 0.0
        return math.log((1.0 + self.count) / (1.0 + self.df[tid])) + 1.0

    def score(self, query: dict[str, float], cosine_query: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(BM25F, cosine) scores of every slot; dead slots score 0.

        BM25F rewards items that say much about the query's terms; the cosine of the items'
        statements rewards saying the same thing, which is what a duplicate does.
        """
        n = len(self.docs)
        if not self.count or not query:
            return np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
        norms = self._length_norms()
        bm25 = np.zeros(n, dtype=np.float32)
        cosine = np.zeros(n, dtype=np.float32)
        # Sorted: float sums then do not depend on the process's string hashing.
        for term in sorted(set(query) | set(cosine_query)):
            tid = self.vocab.get(term)
            if tid is None:
                continue
            postings = self.postings[tid]
            slots, _ = postings.arrays()
            # np.add.at with intp slots and float32 weights is numpy's fast scatter-add path.
            if term in query:
                np.add.at(bm25, slots, (self.idf(term) * query[term]) * postings.bm25_tf(norms, self._basis))
            if term in cosine_query:
                np.add.at(cosine, slots, (cosine_query[term] * self.cosine_idf(term)) * postings.cosine_tf())
        dead = ~self.alive[:n]
        bm25[dead] = 0.0
        cosine /= self.norms[:n]
        cosine[dead] = 0.0
        return bm25, cosine

    def title_similarity(self, title_terms: set[str]) -> np.ndarray:
        """Binary idf cosine of each slot's title with the given title terms; 0 for dead slots.

        A slot's own title norm is estimated from its length and the query's mean idf, so this
        stays one pass over the query's postings.
        """
        n = len(self.docs)
        shared = np.zeros(n, dtype=np.float32)
        weights = {t: self.cosine_idf(t) for t in title_terms}
        weights = {t: w for t, w in weights.items() if w > 0}
        if not weights or not self.count:
            return shared
        for term in sorted(weights):
            np.add.at(shared, self.postings[self.vocab[term]].title_slots(), np.float32(weights[term] ** 2))
        mean = sum(weights.values()) / len(weights)
        query_norm = math.sqrt(sum(w * w for w in weights.values()))
        self._length_norms()  # brings `_title_root` up to date
        shared /= self._title_root * np.float32(query_norm * mean)
        shared[~self.alive[:n]] = 0.0
        return np.minimum(shared, 1.0, out=shared)

    def _length_norms(self) -> np.ndarray:
        """BM25F length normalisation per slot and field, kept until the index changes."""
        n = len(self.docs)
        avg = np.maximum(self.len_sum / max(self.count, 1), 1.0)
        basis = self._basis_avg
        if basis is None or float(np.max(np.abs(avg / basis - 1.0))) > LENGTH_DRIFT:
            self._basis_avg, self._basis = avg, self._basis + 1
        key = (n, self._basis, self._layout)
        if self._norm_key != key:
            avg32 = self._basis_avg.astype(np.float32)
            self._norm_cache = ((1.0 - FIELD_B) + FIELD_B * self.lens[:n] / avg32).astype(np.float32)
            self._title_root = np.sqrt(np.maximum(self.lens[:n, 0], 1.0))
            self._norm_key = key
        return self._norm_cache

    def warm(self) -> None:
        """Compute every posting's query weights in bulk now rather than on each term's first query."""
        norms = self._length_norms()
        chunk: list[_Postings] = []
        size = 0
        for postings in self.postings:
            if postings is None:
                continue
            chunk.append(postings)
            size += len(postings.arrays()[0])
            if size >= WARM_CHUNK:
                self._warm_chunk(chunk, norms)
                chunk, size = [], 0
        self._warm_chunk(chunk, norms)
        self._warm = True

    def _warm_flat(self, flat: Flat) -> np.ndarray:
        """`warm` for a full load's postings, read in place; their statement tf, all in one array."""
        norms = self._length_norms()
        slots, tf, ptr = flat
        terms = len(ptr) - 1
        statement = [_EMPTY_F32]
        lo = 0
        while lo < terms:  # the chunks `warm` makes: terms until WARM_CHUNK postings are reached
            hi = max(min(int(np.searchsorted(ptr, ptr[lo] + WARM_CHUNK)), terms), lo + 1)
            a, b = int(ptr[lo]), int(ptr[hi])
            statement.append(self._preset(self.postings[lo:hi], slots[a:b], tf[a:b], ptr[lo + 1:hi + 1] - a, norms))
            lo = hi
        self._warm = True
        return np.concatenate(statement)

    def _warm_chunk(self, chunk: list[_Postings], norms: np.ndarray) -> None:
        if not chunk:
            return
        slots = np.concatenate([p.slots for p in chunk])
        tf = np.concatenate([p.tf for p in chunk])
        self._preset(chunk, slots, tf, np.cumsum([len(p.slots) for p in chunk]), norms)

    def _preset(self, chunk: list[_Postings], slots: np.ndarray, tf: np.ndarray, ends: np.ndarray,
                norms: np.ndarray) -> np.ndarray:
        """Hand each term of a chunk its weights (`ends`: where each term's postings end); the statement tf."""
        bm25 = bm25_saturated(tf, np.take(norms, slots, axis=0))
        cosine = statement_tf(tf)
        # Slices, not np.split: a view per term at a fraction of np.split's cost.
        a = 0
        for postings, b in zip(chunk, ends.tolist()):
            postings.preset(bm25[a:b], cosine[a:b], self._basis)
            a = b
        return cosine

    def top(self, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k best (slot, score) pairs with a positive score, best first (ties by slot)."""
        n = len(scores)
        if 0 < k < n:
            cut = float(np.partition(scores, n - k)[n - k])  # the k-th best score
            chosen = np.flatnonzero(scores >= cut) if cut > 0 else np.flatnonzero(scores > 0)
        else:
            chosen = np.flatnonzero(scores > 0)
        order = sorted(chosen.tolist(), key=lambda s: (-float(scores[s]), s))[:k]
        return [(s, float(scores[s])) for s in order]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while an index loads or applies changes.

    A sync creates objects that mostly stay alive (and decodes term vectors into millions of
    short-lived dicts); the collector's passes over them, ever longer as the index grows, cost a
    tenth or more of a full load and of a web process following a backfill.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def is_resolved(resolution: str | None, status: str | None) -> bool:
    """Whether an item counts as answered: a real resolution, or a done-like status."""
    if resolution:
        return resolution.strip().lower() not in ("unresolved", "")
    return (status or "").strip().lower() in ("done", "resolved", "closed", "answered")


def stable_argsort(keys: np.ndarray, bound: int) -> np.ndarray:
    """np.argsort(keys, kind="stable") of non-negative integer keys below `bound`.

    Keys and positions packed in one int64 and sorted by value when they fit: numpy's value sort
    is several times faster than its argsort (a build sorts every posting more than once).
    """
    n = len(keys)
    shift = max(n - 1, 1).bit_length()
    if max(bound - 1, 1).bit_length() + shift > 63:
        return np.argsort(keys, kind="stable")
    packed = (keys.astype(np.int64) << shift) | np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << shift) - 1)


def _runs(values: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    """Consecutive runs of the given sizes as views (np.split, at a fraction of its cost)."""
    ends = np.cumsum(sizes).tolist()
    return [values[a:b] for a, b in zip([0, *ends[:-1]], ends)]


def _objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of the values (to reorder many strings with one fancy index)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _raw_time(column: Any, dialect: str) -> Any:
    """A UTC timestamp column as the driver returns it, without a conversion per row in Python."""
    return type_coerce(column, String() if dialect == "sqlite" else DateTime(timezone=True))


def _epochs(values: Sequence[Any], dialect: str) -> np.ndarray:
    """Epoch seconds of `_raw_time` values: SQLite's UTC text parsed by numpy, or aware datetimes."""
    if dialect == "sqlite":  # microseconds / 1e6 is exactly what datetime.timestamp() computes
        return np.array(values, dtype="datetime64[us]").astype(np.int64) / 1e6
    return np.fromiter((v.timestamp() for v in values), dtype=np.float64, count=len(values))


@functools.lru_cache(maxsize=8)
def _contributions_sql(dialect: Dialect) -> tuple[str, tuple[str, ...] | None]:
    """The contributions query compiled once per database: (SQL, parameter names if positional)."""
    query = (select(Contribution.item_id, Contribution.account_id, Contribution.role,
                    _raw_time(Contribution.at, dialect.name))
             .join(Item, Item.id == Contribution.item_id)
             .where(Item.tenant_id == bindparam("tenant"), Item.index_seq > bindparam("seq")))
    compiled = query.compile(dialect=dialect)
    return str(compiled), compiled.positiontup


def _contributions(connection: Connection, tenant_id: int, seq: int
                   ) -> tuple[Sequence[int], Sequence[str], Sequence[str], list[float]]:
    """(item ids, accounts, roles, epoch seconds) of contributions to items changed after `seq`, as columns.

    Read through the driver's cursor as plain tuples: a sync reads every contribution of the
    items that changed (hundreds of thousands after a backfill), and building a Row for each
    cost as much as the database reading them.
    """
    sql, names = _contributions_sql(connection.dialect)
    values = {"tenant": tenant_id, "seq": seq}
    result = connection.exec_driver_sql(sql, tuple(values[n] for n in names) if names is not None else values)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    if not rows:
        return (), (), (), []
    item, accounts, roles, at = zip(*rows)
    return item, accounts, roles, _epochs(at, connection.dialect.name).tolist()


@functools.lru_cache(maxsize=None)  # per database kind and streaming: four at most
def _items_query(dialect: str, stream: bool) -> Any:
    """The changed-items query for a database, built once (building it cost more than an empty run)."""
    # By id through the (tenant, seq) index's ids: a plain filter left SQLite sorting whole rows,
    # term vectors included, in a temporary b-tree (twice the CPU of reading them, and disk).
    ids = select(Item.id).where(Item.tenant_id == bindparam("tenant"), Item.index_seq > bindparam("seq"))
    query = (select(Item.id, cast(Item.terms, Text), Item.resolution, Item.status, Item.helpful_count,
                    Item.not_relevant_count, _raw_time(Item.created, dialect))
             .where(Item.id.in_(ids)).order_by(Item.id))
    # Streamed, PostgreSQL keeps the rows on the server until fetched (bounded memory for a
    # full load), at four round trips (DECLARE, FETCH, FETCH, CLOSE) instead of one.
    return query.execution_options(yield_per=BATCH) if stream else query


def _item_batches(connection: Connection, tenant_id: int, seq: int, stream: bool
                  ) -> Iterator[tuple[list[DocInfo], list[dict[str, dict[str, int]]]]]:
    """The items changed after `seq` in id order, BATCH at a time: (ranking facts, term vectors).

    Term vectors are read as text and decoded by orjson, timestamps as the driver returns them:
    SQLAlchemy's per-row JSON and datetime processing cost more than the rest of a build's reading.
    """
    dialect = connection.dialect.name
    result = connection.execute(_items_query(dialect, stream), {"tenant": tenant_id, "seq": seq})
    for rows in result.partitions(BATCH):
        ids, terms, resolution, status, helpful, not_relevant, created = zip(*map(tuple, rows))
        infos = [DocInfo(i, is_resolved(r, s), h or 0, x or 0, c) for i, r, s, h, x, c in zip(
            ids, resolution, status, helpful, not_relevant, _epochs(created, dialect).tolist())]
        yield infos, [(orjson.loads(t) if t else None) or {} for t in terms]


def _wants_snapshot(index: TenantIndex) -> bool:
    if index.unsaved < max(SNAPSHOT_AFTER, SNAPSHOT_SHARE * index.count):
        return False
    still = time.monotonic() - index.changed_at >= SNAPSHOT_QUIET
    return still or index.unsaved >= max(2 * SNAPSHOT_AFTER, index.count / 2)


def save_due_snapshots(engine: Engine) -> int:
    """Write the snapshots this process's indexes owe (those that waited for a still tenant); how many."""
    with _caches_lock:
        indexes = list(_caches.get(engine, {}).values())
    due = [index for index in indexes if _wants_snapshot(index)]
    for index in due:
        _save_snapshot(engine, index)
    return len(due)


def _save_snapshot(engine: Engine, index: TenantIndex) -> None:
    """Write a snapshot in a transaction of its own; a failure only means a later process rebuilds more."""
    from plugin.matching import snapshot

    index.unsaved = 0
    try:
        with Session(engine) as session:
            if engine.dialect.name == "sqlite":  # never wait behind the caller's own write lock
                session.connection().exec_driver_sql("PRAGMA busy_timeout=200")
            try:
                snapshot.save(session, index)
                session.commit()
            finally:
                if engine.dialect.name == "sqlite":
                    session.connection().exec_driver_sql("PRAGMA busy_timeout=30000")
    except SQLAlchemyError:
        log.warning("could not save the index snapshot of tenant %s", index.tenant_id, exc_info=True)


def _new_index(session: Session, tenant_id: int) -> TenantIndex:
    from plugin.matching import snapshot

    with _collector_paused():
        index = snapshot.restore(session, tenant_id)
    return index if index is not None else TenantIndex(tenant_id)


_caches: weakref.WeakKeyDictionary[Engine, dict[int, TenantIndex]] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def tenant_index(session: Session, tenant_id: int) -> TenantIndex:
    """This process's index for the tenant, synced with what the database has committed."""
    engine = session.get_bind()
    engine = getattr(engine, "engine", engine)
    with _caches_lock:
        index = _caches.setdefault(engine, {}).get(tenant_id)
        created = index is None
        if index is None:
            index = _caches[engine][tenant_id] = _new_index(session, tenant_id)
    index.sync(session)
    if created:
        # A loaded index is hundreds of thousands of long-lived objects: moved out of the cyclic
        # collector's view, a full collection no longer stalls a query (about a second at 100k items).
        gc.freeze()
    if _wants_snapshot(index):
        _save_snapshot(engine, index)
    return index
