"""How similar each candidate item is to a target, scored with the site's own statistics.

Three views of similarity, each over the engine's candidates and their stored term vectors:
BM25F rewards items that say much about the query's terms; the cosine of the items'
statements (title, description, components and labels, as tf-idf vectors) rewards saying the
same thing, which is what a duplicate does; and title-to-title agreement, since a duplicate is
usually filed under nearly the same title.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from plugin.matching.packed import TITLE, Packed
from plugin.matching.vectors import FIELDS

K1 = 1.2
FIELD_WEIGHTS = (2.5, 1.0, 0.4, 1.5)  # title, body, comments, meta
FIELD_B = (0.3, 0.75, 0.75, 0.3)
# The statement of an item: title twice, body and meta; its discussion is left out.
STATEMENT_WEIGHTS = (("t", 2.0), ("d", 1.0), ("m", 1.0))
_WEIGHTS, _B = np.array(FIELD_WEIGHTS), np.array(FIELD_B)
_STATEMENT = np.array([dict(STATEMENT_WEIGHTS).get(name, 0.0) for name in FIELDS])

Vector = dict[str, dict[str, int]]


class Statistics(Protocol):
    """A site's term statistics (`plugin.search.site.SiteView`)."""

    def idf(self, value: str, exact: bool = True) -> float: ...

    def cosine_idf(self, value: str, exact: bool = True) -> float: ...


def bm25f(stats: Statistics, packed: Packed, query: dict[str, float], averages: np.ndarray) -> np.ndarray:
    """BM25F of each item for the weighted query terms, with the site's mean field lengths."""
    values = list(query)
    idf = np.array([stats.idf(t) * w for t, w in query.items()], dtype=np.float64)
    rows, which = packed.matches(values)
    field, owner = packed.field[rows], packed.owner[rows]
    means = np.where(averages > 0, averages, 1.0)
    scale = _WEIGHTS[field] / ((1.0 - _B[field]) + _B[field] * packed.lengths[owner, field] / means[field])
    weighted = np.bincount(owner * len(values) + which, weights=packed.tf[rows] * scale,
                           minlength=packed.count * len(values)).reshape(packed.count, len(values))
    return (idf * weighted / (K1 + weighted)).sum(axis=1)


def statement(vector: Vector) -> dict[str, float]:
    """An item's statement as weighted term frequencies (title twice, body, meta)."""
    out: dict[str, float] = {}
    for name, weight in STATEMENT_WEIGHTS:
        for t, tf in (vector.get(name) or {}).items():
            out[t] = out.get(t, 0.0) + weight * tf
    return out


def statement_norms(vectors: Sequence[Vector], idf: Callable[[list[str], np.ndarray], np.ndarray]) -> np.ndarray:
    """The length of each item's statement as a sublinear tf-idf vector.

    `idf(terms, held)` gives the idf of the distinct terms, given how many of these items hold each.
    """
    said = [statement(v) for v in vectors]
    index: dict[str, int] = {}
    ids = np.fromiter((index.setdefault(t, len(index)) for s in said for t in s), dtype=np.int64)
    tf = np.fromiter((tf for s in said for tf in s.values()), dtype=np.float64, count=len(ids))
    owner = np.repeat(np.arange(len(said)), [len(s) for s in said])
    weights = (1.0 + np.log(tf)) * idf(list(index), np.bincount(ids, minlength=len(index)))[ids]
    return np.sqrt(np.bincount(owner, weights=weights * weights, minlength=len(said)))


def over_norms(dots: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """The cosines: each item's dot product over its statement's norm (0 where the norm is unknown)."""
    return np.divide(dots, norms, out=np.zeros(len(dots)), where=norms > 0)


def statement_dots(stats: Statistics, packed: Packed, query: dict[str, float]) -> np.ndarray:
    """Dot product of each item's statement (sublinear tf-idf) with the unit query vector.

    Only the query's terms are looked up here: each item's norm, which `over_norms` divides by,
    was computed by the indexer with the idf of its day (again once the site grew fourfold).
    """
    values = list(query)
    weights = np.array([w * stats.cosine_idf(t) for t, w in query.items()], dtype=np.float64)
    rows, which = packed.matches(values)
    owner, said = packed.owner[rows], _STATEMENT[packed.field[rows]] * packed.tf[rows]
    tf = np.bincount(owner * len(values) + which, weights=said,
                     minlength=packed.count * len(values)).reshape(packed.count, len(values))
    return (weights * (1.0 + np.log(np.where(tf > 0, tf, 1.0))) * (tf > 0)).sum(axis=1)


def title_agreement(stats: Statistics, packed: Packed, title: set[str]) -> np.ndarray:
    """Binary idf cosine of each item's title with the target's title terms, at most 1.

    An item's own title norm is estimated from its length and the query's mean idf.
    """
    weights = {t: w for t in sorted(title) if (w := stats.cosine_idf(t)) > 0}
    if not weights:
        return np.zeros(packed.count, dtype=np.float64)
    values = np.array(list(weights.values()), dtype=np.float64)
    mean = float(values.mean())
    query_norm = math.sqrt(float((values * values).sum()))
    rows, which = packed.matches(list(weights))
    titled = packed.field[rows] == TITLE
    shared = np.bincount(packed.owner[rows][titled], weights=values[which[titled]] ** 2, minlength=packed.count)
    root = np.sqrt(np.maximum(packed.lengths[:, TITLE], 1.0))
    return np.minimum(shared / (root * query_norm * mean), 1.0)
