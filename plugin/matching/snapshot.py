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
from itertools import pairwise

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.matching.index import TF_MAX, TF_TYPE, DocInfo, TenantIndex, Vocabulary, _Postings, _runs, stable_argsort
from plugin.matching.people import SlotPeople
from plugin.models.content import IndexSnapshot

FORMAT = 1  # bump when the arrays change shape or meaning; older snapshots are then ignored
log = logging.getLogger(__name__)


def _live_postings(index: TenantIndex, alive: np.ndarray,
                   remap: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(terms with a live posting, their offsets, live slots renumbered, tf as uint16), all terms at once."""
    arrays = [p.arrays() for p in index.postings]
    lengths = np.array([len(a[0]) for a in arrays], dtype=np.int64)
    slots = np.concatenate([a[0] for a in arrays]) if arrays else np.empty(0, dtype=np.int32)
    owner = np.repeat(np.arange(len(arrays)), lengths)
    mask = alive[slots]
    live = np.bincount(owner[mask], minlength=len(arrays))
    names = [""] * len(arrays)
    for term, tid in index.vocab.items():
        names[tid] = term
    terms = [names[tid] for tid in np.flatnonzero(live).tolist()]
    ptr = np.concatenate([[0], np.cumsum(live[live > 0])]).astype(np.int64)
    tf = np.concatenate([a[1] for a in arrays]) if arrays else np.empty((0, index.lens.shape[1]))
    return terms, ptr, remap[slots[mask]].astype(np.int32), np.minimum(tf[mask], TF_MAX).astype(np.uint16)


def dump(index: TenantIndex) -> bytes:
    """The live part of an index as one compressed blob (call with the index lock held)."""
    n = len(index.docs)
    alive = index.alive[:n]
    keep = np.flatnonzero(alive)
    remap = (np.cumsum(alive) - 1).astype(np.int32)
    terms, ptr, slots, tfs = _live_postings(index, alive, remap)
    docs = [index.docs[i] for i in keep]
    arrays = {
        "term_ptr": ptr, "slots": slots, "tf": tfs,
        "item_id": np.array([d.item_id for d in docs], dtype=np.int64),
        "resolved": np.array([d.resolved for d in docs], dtype=bool),
        "helpful": np.array([d.helpful for d in docs], dtype=np.int32),
        "not_relevant": np.array([d.not_relevant for d in docs], dtype=np.int32),
        "created": np.array([d.created for d in docs], dtype=np.float64),
        "lens": index.lens[keep], "norms": index.norms[keep],
        "meta": np.array([index.seq, index.norm_basis], dtype=np.int64),
        "terms": np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8),
        "accounts": np.frombuffer(json.dumps(index.people.accounts).encode("utf-8"), dtype=np.uint8),
        **index.people.export(keep),
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
    ptr, slots, tf = a["term_ptr"], a["slots"].astype(np.intp), a["tf"].astype(TF_TYPE, copy=False)
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
    with index.lock:
        blob, seq, items = dump(index), index.seq, index.count
    row = session.get(IndexSnapshot, index.tenant_id, with_for_update=True)
    if row is None:
        session.add(IndexSnapshot(tenant_id=index.tenant_id, seq=seq, items=items, format=FORMAT, blob=blob))
    elif row.seq < seq or row.format != FORMAT:
        row.seq, row.items, row.format, row.blob = seq, items, FORMAT, blob
