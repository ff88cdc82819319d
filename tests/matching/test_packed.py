"""Packed term vectors: the similarity views computed on them equal the same sums over named terms."""
from __future__ import annotations

import math

import numpy as np
import pytest

from plugin.matching import similarity
from plugin.matching.packed import Packed, pack
from plugin.matching.similarity import FIELD_B, FIELD_WEIGHTS, K1, STATEMENT_WEIGHTS
from plugin.matching.vectors import FIELDS

VECTORS = [
    {"t": {"disk": 1, "full": 1}, "d": {"disk": 3, "log": 2, "rotat": 1}, "c": {"disk": 1, "fix": 2},
     "m": {"storag": 1}},
    {"t": {"login": 1, "fail": 1}, "d": {"password": 2, "fail": 1}, "c": {}, "m": {}},
    {},
    {"t": {"disk": 2}, "d": {}, "c": {"log": 40}, "m": {"storag": 1, "disk": 1}},
]


class Stats:
    """Fixed idf per term: what a site view answers."""

    IDF = {"disk": 1.5, "log": 0.7, "fail": 2.0, "password": 3.0, "storag": 1.1, "full": 0.9, "rotat": 2.5}

    def idf(self, value: str, exact: bool = True) -> float:
        return self.IDF.get(value, 0.0)

    def cosine_idf(self, value: str, exact: bool = True) -> float:
        return self.IDF.get(value, 0.0) + 1.0 if value in self.IDF else 0.0


def _bm25f(vector: dict[str, dict[str, int]], query: dict[str, float], means: list[float]) -> float:
    """BM25F of one item, term by term."""
    weighted: dict[str, float] = {}
    for f, name in enumerate(FIELDS):
        terms = vector.get(name) or {}
        scale = FIELD_WEIGHTS[f] / ((1 - FIELD_B[f]) + FIELD_B[f] * sum(terms.values()) / means[f])
        for t in query.keys() & terms.keys():
            weighted[t] = weighted.get(t, 0.0) + terms[t] * scale
    return sum(Stats().idf(t) * query[t] * w / (K1 + w) for t, w in weighted.items())


def _cosine(vector: dict[str, dict[str, int]], norm: float, query: dict[str, float]) -> float:
    said = similarity.statement(vector)
    return sum(query[t] * Stats().cosine_idf(t) * (1 + math.log(said[t])) for t in query.keys() & said.keys()) / norm


def test_packing_keeps_every_field_term_and_frequency() -> None:
    packed = Packed.of([pack(v) for v in VECTORS])
    assert packed.count == 4
    assert packed.lengths.tolist() == [[2, 6, 3, 1], [2, 3, 0, 0], [0, 0, 0, 0], [2, 0, 40, 2]]
    rows, which = packed.matches(["disk", "password", "absent"])
    found = sorted((int(packed.owner[r]), FIELDS[packed.field[r]], ["disk", "password", "absent"][w], packed.tf[r])
                   for r, w in zip(rows, which, strict=True))
    assert found == [(0, "c", "disk", 1.0), (0, "d", "disk", 3.0), (0, "t", "disk", 1.0), (1, "d", "password", 2.0),
                     (3, "m", "disk", 1.0), (3, "t", "disk", 2.0)]


def test_taking_items_renumbers_them_in_the_order_asked() -> None:
    taken = Packed.of([pack(v) for v in VECTORS]).take([3, 0])
    assert taken.count == 2
    assert taken.lengths.tolist() == [[2, 0, 40, 2], [2, 6, 3, 1]]
    assert sorted(set(taken.owner.tolist())) == [0, 1]
    assert taken.tf[taken.owner == 0].sum() == 44


def test_views_of_similarity_equal_the_sums_over_named_terms() -> None:
    packed = Packed.of([pack(v) for v in VECTORS])
    query = {"disk": 1.0, "log": 0.5, "password": 2.0, "unknown": 1.0}
    means = [2.0, 3.0, 10.0, 1.0]
    norms = np.array([2.0, 3.0, 0.0, 1.5])
    bm25 = similarity.bm25f(Stats(), packed, query, np.array(means))
    assert bm25 == pytest.approx([_bm25f(v, query, means) for v in VECTORS])
    cosine = similarity.over_norms(similarity.statement_dots(Stats(), packed, query), norms)
    assert cosine == pytest.approx([_cosine(v, n, query) if n else 0.0 for v, n in zip(VECTORS, norms, strict=True)])
    assert cosine[2] == 0.0 and bm25[2] == 0.0  # an item without terms matches nothing
    titles = similarity.title_agreement(Stats(), packed, {"disk", "full"})
    weights = {"disk": 2.5, "full": 1.9}
    norm, mean = math.sqrt(sum(w * w for w in weights.values())), sum(weights.values()) / 2
    assert titles == pytest.approx([min((2.5**2 + 1.9**2) / (math.sqrt(2) * norm * mean), 1.0), 0.0, 0.0,
                                    min(2.5**2 / (math.sqrt(2) * norm * mean), 1.0)])


def test_comments_are_no_part_of_the_statement() -> None:
    assert dict(STATEMENT_WEIGHTS).get("c") is None
    packed = Packed.of([pack({"c": {"log": 3}})])
    assert similarity.statement_dots(Stats(), packed, {"log": 1.0}).tolist() == [0.0]
