"""Term vectors packed for ranking: each term of an item as a 64-bit hash with its field and frequency.

Why: ranking reads the term vectors of a few hundred candidates per target. Parsed from JSON,
every term becomes Python objects, which cost more than the whole ranking computed with them.
Packed, one target's candidates are one numpy array, and each view of similarity matches the
query's terms against all of them at once. The JSON vector stays the stored truth (the index,
norms and reasons read terms by name); this column is derived from it by the same writer.
"""
from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from plugin.matching.text import Memo
from plugin.matching.vectors import FIELDS

# One entry per (field, term): the term's hash, and its field in the top two bits of the frequency.
ENTRY = np.dtype([("hash", "<u8"), ("code", "<u4")])
_FIELD_SHIFT = 30
_TF_MASK = (1 << _FIELD_SHIFT) - 1
TITLE = FIELDS.index("t")
_BUCKETS = 1 << 16


def _term_hash(value: str) -> int:
    """A term's 64-bit hash, the same in every process and release."""
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


# Terms repeat across items (Zipf-like): most are hashed once (an lru_cache call per term cost a
# sixth of packing an item).
_HASHES: Memo[str, int] = Memo(_term_hash, 1 << 18)


def pack(vector: dict[str, dict[str, int]]) -> bytes:
    """The packed form of a term vector {"field": {"term": tf}}."""
    # Plain lists, one array at the end: numpy calls per field cost more than the terms' own work.
    hashed: list[int] = []
    codes: list[int] = []
    for f, name in enumerate(FIELDS):
        terms = vector.get(name)
        if terms:
            hashed += map(_HASHES.__getitem__, terms)
            field = f << _FIELD_SHIFT
            codes += [field | min(tf, _TF_MASK) for tf in terms.values()]
    entries = np.empty(len(hashed), dtype=ENTRY)
    entries["hash"] = hashed
    entries["code"] = codes
    return entries.tobytes()


def hashes(values: Collection[str]) -> np.ndarray:
    """The hashes of some terms, as an array."""
    return np.fromiter(map(_HASHES.__getitem__, values), dtype=np.uint64, count=len(values))


@dataclass(frozen=True)
class Packed:
    """The term vectors of several items as flat arrays: one row per (item, field, term)."""

    count: int  # items
    hash: np.ndarray  # uint64
    tf: np.ndarray  # float64
    field: np.ndarray  # index into FIELDS
    owner: np.ndarray  # the item's position
    lengths: np.ndarray  # (count, len(FIELDS)): each field's summed term frequency
    bucket: np.ndarray  # the hash's low bits: a table lookup rules out most rows before any search

    @classmethod
    def of(cls, blobs: Sequence[bytes | None]) -> Packed:
        """The items' packed vectors, in order (None for an item without terms)."""
        parts = [b or b"" for b in blobs]
        entries = np.frombuffer(b"".join(parts), dtype=ENTRY)
        owner = np.repeat(np.arange(len(parts)), [len(p) // ENTRY.itemsize for p in parts])
        code = entries["code"]
        tf = (code & _TF_MASK).astype(np.float64)
        field = (code >> _FIELD_SHIFT).astype(np.int64)
        width = len(FIELDS)
        lengths = np.bincount(owner * width + field, weights=tf, minlength=len(parts) * width)
        hashed = entries["hash"].copy()  # aligned
        return cls(len(parts), hashed, tf, field, owner, lengths.reshape(len(parts), width), _bucket(hashed))

    def take(self, positions: Sequence[int] | np.ndarray) -> Packed:
        """The packed vectors of some of these items, renumbered in the given order."""
        order = np.full(self.count, -1, dtype=np.int64)
        order[np.asarray(positions, dtype=np.int64)] = np.arange(len(positions))
        keep = order[self.owner] >= 0
        return Packed(len(positions), self.hash[keep], self.tf[keep], self.field[keep],
                      order[self.owner[keep]], self.lengths[np.asarray(positions, dtype=np.int64)], self.bucket[keep])

    def matches(self, values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows holding one of the terms, which term each holds as an index into `values`)."""
        if not values or not len(self.hash):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        wanted = hashes(values)
        order = np.argsort(wanted)
        ordered = wanted[order]
        # A binary search of every row cost 30 times more than this table of the terms' buckets.
        table = np.zeros(_BUCKETS, dtype=bool)
        table[_bucket(ordered)] = True
        maybe = np.flatnonzero(table[self.bucket])
        at = np.minimum(np.searchsorted(ordered, self.hash[maybe]), len(ordered) - 1)
        found = ordered[at] == self.hash[maybe]
        return maybe[found], order[at[found]]


def _bucket(hashed: np.ndarray) -> np.ndarray:
    return (hashed & np.uint64(_BUCKETS - 1)).astype(np.intp)
