"""Index snapshots: a tenant's index cache as compressed arrays in the database.

Rebuilding a cache from every item's term vector costs seconds per ten thousand items; loading a
snapshot is a decompress and a few array views. A fresh process loads the latest snapshot and
then syncs the changes committed after its sequence, like any cache. Whichever process has
applied many changes since the last snapshot writes a new one in its own short transaction.
"""
from __future__ import annotations

import io
import json
import logging
import zlib
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.matching.index import TF_MAX, TF_TYPE, DocInfo, TenantIndex, Vocabulary, _Postings, _runs, stable_argsort
from plugin.matching.people import SlotPeople
from plugin.models.content import IndexSnapshot

FORMAT = 2  # bump when the arrays change shape or meaning; older snapshots are then ignored
log = logging.getLogger(__name__)


@dataclass
class _Captured:
    """What a snapshot needs of an index, taken under its lock; encoded after the lock is released.

    Posting arrays are never written in place (merges and compaction make new ones), so holding
    references is enough: a save then stalls the tenant's queries for a copy of references,
    not for the seconds that concatenating and compressing a large index take.
    """

    postings: list[tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]] | None]]
    terms: list[str]
    alive: np.ndarray
    docs: list[DocInfo | None]
    lens: np.ndarray
    norms: np.ndarray
    meta: np.ndarray
    accounts: list[str]
    people: dict[str, np.ndarray]


def _capture(index: TenantIndex) -> _Captured:
    """The index's state as references and small copies (call with the index lock held)."""
    n = len(index.docs)
    alive = index.alive[:n].copy()
    keep = np.flatnonzero(alive)
    return _Captured(
        postings=[(p.slots, p.tf, p.pending and p.pending[:]) for p in index.postings],
        terms=list(index.vocab), alive=alive, docs=index.docs[:n], lens=index.lens[keep], norms=index.norms[keep],
        meta=np.array([index.seq, index.norm_basis], dtype=np.int64), accounts=list(index.people.accounts),
        people=index.people.export(keep))


def _arrays(postings: tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]] | None]
            ) -> tuple[np.ndarray, np.ndarray]:
    slots, tf, pending = postings
    if not pending:
        return slots, tf
    return np.concatenate([slots, *(s for s, _ in pending)]), np.concatenate([tf, *(t for _, t in pending)])


def _live_postings(state: _Captured, remap: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(terms with a live posting, their offsets, live slots renumbered, tf as uint16), all terms at once."""
    arrays = [_arrays(p) for p in state.postings]
    lengths = np.array([len(a[0]) for a in arrays], dtype=np.int64)
    slots = np.concatenate([a[0] for a in arrays]) if arrays else np.empty(0, dtype=np.int32)
    owner = np.repeat(np.arange(len(arrays)), lengths)
    alive = state.alive
    everyone = bool(alive.all())  # as after a full load or a compaction: no copies to mask
    mask = slice(None) if everyone else alive[slots]
    live = lengths if everyone else np.bincount(owner[mask], minlength=len(arrays))
    # Term ids are given in order of first sight (`Vocabulary`), so the vocabulary's order is theirs.
    terms = [state.terms[tid] for tid in np.flatnonzero(live).tolist()]
    ptr = np.concatenate([[0], np.cumsum(live[live > 0])]).astype(np.int64)
    tf = np.concatenate([a[1] for a in arrays]) if arrays else np.empty((0, state.lens.shape[1]))
    tf = tf if everyone else tf[mask]
    if tf.dtype != np.uint16:
        tf = np.minimum(tf, TF_MAX).astype(np.uint16)
    return terms, ptr, (slots if everyone else remap[slots[mask]]).astype(np.int32), tf


def _planes(values: np.ndarray) -> np.ndarray:
    """Little-endian values as byte planes (all first bytes, then all second bytes...).

    Slot gaps and term counts are small numbers: their high-byte planes are runs of zeros, which
    zlib compresses several times faster, and smaller, than interleaved bytes.
    """
    if not len(values):
        return np.empty(0, dtype=np.uint8)
    raw = values.astype(values.dtype.newbyteorder("<"), copy=False).reshape(len(values), -1)
    return np.ascontiguousarray(raw.view(np.uint8).T).ravel()


def _unplanes(planes: np.ndarray, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """The values `_planes` made, in native byte order."""
    rows = shape[0]
    if not rows:
        return np.empty(shape, dtype=dtype)
    raw = np.ascontiguousarray(planes.reshape(-1, rows).T)
    return raw.view(np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)


def _slot_gaps(slots: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Each posting's slot minus the one before it in its term (a term's first: the slot itself)."""
    gaps = np.diff(slots.astype(np.int64), prepend=0)
    starts = ptr[:-1][ptr[:-1] < len(slots)]
    gaps[starts] = slots[starts]
    return gaps.astype(np.uint32)


def _slots_from_gaps(gaps: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    total = np.cumsum(gaps, dtype=np.int64)
    starts = ptr[:-1]
    base = total[starts] - gaps[starts] if len(gaps) else total[:0]
    return (total - np.repeat(base, np.diff(ptr))).astype(np.intp)


def dump(index: TenantIndex) -> bytes:
    """The live part of an index as one compressed blob (call with the index lock held)."""
    return _encode(_capture(index))


def _encode(state: _Captured) -> bytes:
    """A captured index as one compressed blob (no lock needed)."""
    alive = state.alive
    remap = (np.cumsum(alive) - 1).astype(np.int32)
    terms, ptr, slots, tfs = _live_postings(state, remap)
    docs = [state.docs[i] for i in np.flatnonzero(alive)]
    arrays = {
        "term_ptr": ptr, "slot_gaps": _planes(_slot_gaps(slots, ptr)), "tf_planes": _planes(tfs),
        "item_id": np.array([d.item_id for d in docs], dtype=np.int64),
        "resolved": np.array([d.resolved for d in docs], dtype=bool),
        "helpful": np.array([d.helpful for d in docs], dtype=np.int32),
        "not_relevant": np.array([d.not_relevant for d in docs], dtype=np.int32),
        "created": np.array([d.created for d in docs], dtype=np.float64),
        "lens": state.lens, "norms": state.norms, "meta": state.meta,
        "terms": np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8),
        "accounts": np.frombuffer(json.dumps(state.accounts).encode("utf-8"), dtype=np.uint8),
        **state.people,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return zlib.compress(buffer.getvalue(), 1)


def load(tenant_id: int, blob: bytes) -> TenantIndex:
    """An index rebuilt from `dump` output, at the sequence it was dumped at."""
    with np.load(io.BytesIO(zlib.decompress(blob))) as npz:
        a = {name: npz[name] for name in npz.files}
    index = TenantIndex(tenant_id)
    terms = a["terms"].tobytes().decode("utf-8").split("\n") if len(a["terms"]) else []
    ptr = a["term_ptr"]
    slots = _slots_from_gaps(_unplanes(a["slot_gaps"], "u4", (int(ptr[-1]),)), ptr)
    tf = _unplanes(a["tf_planes"], "u2", (int(ptr[-1]), a["lens"].shape[1])).astype(TF_TYPE, copy=False)
    index.vocab = Vocabulary((term, tid) for tid, term in enumerate(terms))
    bounds = ptr.tolist()
    index.postings = [_Postings(slots[a:b], tf[a:b]) for a, b in pairwise(bounds)]
    index.df = np.diff(ptr).tolist()
    n = len(a["item_id"])
    owners = np.repeat(np.arange(len(terms), dtype=np.int32), np.diff(ptr))
    by_slot = owners[stable_argsort(slots, n)]
    index.slot_terms = _runs(by_slot, np.bincount(slots, minlength=n)) if n else []
    index.docs = [DocInfo(int(i), bool(r), int(h), int(x), float(c)) for i, r, h, x, c in zip(
        a["item_id"].tolist(), a["resolved"].tolist(), a["helpful"].tolist(), a["not_relevant"].tolist(),
        a["created"].tolist())]
    index.slot_of = {doc.item_id: slot for slot, doc in enumerate(index.docs)}
    index.lens, index.norms = a["lens"].copy(), a["norms"].copy()
    index.alive = np.ones(n, dtype=bool)
    index.len_sum = index.lens.astype(np.float64).sum(axis=0)
    index.count = n
    index.seq, index.norm_basis = (int(v) for v in a["meta"])
    accounts = json.loads(a["accounts"].tobytes().decode("utf-8"))
    index.people = SlotPeople.restore(accounts, a)
    index.people.grow(max(n, 16))
    index._grow(max(n, 16))
    return index


def restore(session: Session, tenant_id: int) -> TenantIndex | None:
    """The tenant's latest snapshot as an index, or None when there is none (or it is unreadable)."""
    blob = session.scalar(select(IndexSnapshot.blob).where(IndexSnapshot.tenant_id == tenant_id,
                                                           IndexSnapshot.format == FORMAT))
    if blob is None:
        return None
    try:
        return load(tenant_id, blob)
    except (ValueError, KeyError, OSError, zlib.error):
        log.warning("index snapshot of tenant %s is unreadable; rebuilding", tenant_id, exc_info=True)
        return None


def save(session: Session, index: TenantIndex) -> None:
    """Store the index as the tenant's snapshot unless a newer one is already there."""
    with index.lock:  # only the capture: queries wait for a copy of references, not the encoding
        state, seq, items = _capture(index), index.seq, index.count
    blob = _encode(state)
    row = session.get(IndexSnapshot, index.tenant_id, with_for_update=True)
    if row is None:
        session.add(IndexSnapshot(tenant_id=index.tenant_id, seq=seq, items=items, format=FORMAT, blob=blob))
    elif row.seq < seq or row.format != FORMAT:
        row.seq, row.items, row.format, row.blob = seq, items, FORMAT, blob
