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

from plugin.matching.vectors import FIELDS

K1 = 1.2
FIELD_WEIGHTS = (2.5, 1.0, 0.4, 1.5)  # title, body, comments, meta
FIELD_B = (0.3, 0.75, 0.75, 0.3)
# The statement of an item: title twice, body and meta; its discussion is left out.
STATEMENT_WEIGHTS = (("t", 2.0), ("d", 1.0), ("m", 1.0))

Vector = dict[str, dict[str, int]]


class Statistics(Protocol):
    """A site's term statistics (`plugin.search.site.SiteView`)."""

    def idf(self, value: str, exact: bool = True) -> float: ...

    def cosine_idf(self, value: str, exact: bool = True) -> float: ...


def field_lengths(vector: Vector) -> list[float]:
    """The length (sum of term frequencies) of each field of a term vector."""
    return [float(sum((vector.get(name) or {}).values())) for name in FIELDS]


def bm25f(stats: Statistics, vectors: Sequence[Vector], query: dict[str, float],
          averages: np.ndarray) -> np.ndarray:
    """BM25F of each item for the weighted query terms, with the site's mean field lengths."""
    idf = {t: stats.idf(t) * w for t, w in query.items()}
    means = [float(a) for a in averages]
    scores = np.zeros(len(vectors), dtype=np.float64)
    keys = query.keys()
    for n, vector in enumerate(vectors):
        weighted: dict[str, float] = {}
        for f, name in enumerate(FIELDS):
            terms = vector.get(name)
            if not terms:
                continue
            common = keys & terms.keys()
            if not common:  # a field's length is summed only where it matters (comments are long)
                continue
            scale = FIELD_WEIGHTS[f] / ((1.0 - FIELD_B[f]) + FIELD_B[f] * sum(terms.values()) / means[f])
            for t in common:
                weighted[t] = weighted.get(t, 0.0) + terms[t] * scale
        scores[n] = sum([idf[t] * w / (K1 + w) for t, w in weighted.items()])
    return scores


def statement(vector: Vector) -> dict[str, float]:
    """An item's statement as weighted term frequencies (title twice, body, meta)."""
    out: dict[str, float] = {}
    for name, weight in STATEMENT_WEIGHTS:
        for t, tf in (vector.get(name) or {}).items():
            out[t] = out.get(t, 0.0) + weight * tf
    return out


def statement_norm(said: dict[str, float], idf: Callable[[str], float]) -> float:
    """The length of one item's statement as a sublinear tf-idf vector."""
    return math.sqrt(sum(((1.0 + math.log(tf)) * idf(t)) ** 2 for t, tf in said.items()))


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


def cosine(stats: Statistics, vectors: Sequence[Vector], norms: Sequence[float],
           query: dict[str, float]) -> np.ndarray:
    """Cosine of each item's statement (sublinear tf-idf) with the unit query vector.

    Each item's norm was computed by the indexer with the idf of its day (again once the site
    doubled), so only the query's terms are looked up here.
    """
    scores = np.zeros(len(vectors), dtype=np.float64)
    weights = {t: w * stats.cosine_idf(t) for t, w in query.items()}
    keys = weights.keys()
    for n, (vector, norm) in enumerate(zip(vectors, norms, strict=False)):
        if norm <= 0:
            continue
        said: dict[str, float] = {}
        for name, weight in STATEMENT_WEIGHTS:
            terms = vector.get(name)
            if terms:
                for t in keys & terms.keys():
                    said[t] = said.get(t, 0.0) + weight * terms[t]
        scores[n] = sum(weights[t] * (1.0 + math.log(tf)) for t, tf in said.items()) / norm
    return scores


def title_agreement(stats: Statistics, vectors: Sequence[Vector], title: set[str]) -> np.ndarray:
    """Binary idf cosine of each item's title with the target's title terms, at most 1.

    An item's own title norm is estimated from its length and the query's mean idf.
    """
    scores = np.zeros(len(vectors), dtype=np.float64)
    weights = {t: w for t in title if (w := stats.cosine_idf(t)) > 0}
    if not weights:
        return scores
    mean = sum(weights.values()) / len(weights)
    query_norm = math.sqrt(sum(w * w for w in weights.values()))
    for n, vector in enumerate(vectors):
        terms = vector.get("t") or {}
        shared = sum(weights[t] ** 2 for t in weights.keys() & terms.keys())
        if shared:
            root = math.sqrt(max(float(sum(terms.values())), 1.0))
            scores[n] = min(shared / (root * query_norm * mean), 1.0)
    return scores
