"""The index's cached per-posting query weights stay right through adds, updates, deletes and compaction."""
from __future__ import annotations

import numpy as np

from plugin.matching.index import DocInfo, TenantIndex

QUERY = {"disk": 1.5, "full": 1.0, "error": 0.7}
COSINE = {"disk": 0.6, "full": 0.5, "log": 0.4}


def _item(n: int, words: int) -> tuple[DocInfo, dict[str, dict[str, int]], list]:
    body = {"disk": 1 + n % 3, "error": 1, "log": n % 2, **{f"w{n}x{i}": 1 for i in range(words)}}
    return DocInfo(n, n % 2 == 0, 0, 0, 1000.0 + n), {"t": {"disk": 1, "full": n % 2}, "d": body}, []


def _recomputed(index: TenantIndex) -> tuple[np.ndarray, np.ndarray]:
    """The scores with every cached weight thrown away and computed afresh."""
    for postings in index.postings:
        postings._clear_weights()
    index._basis_avg, index._norm_key = None, None
    return index.score(QUERY, COSINE)


def test_cached_weights_match_fresh_ones_after_every_kind_of_change() -> None:
    index = TenantIndex(1)
    index.put_many([_item(n, 3) for n in range(40)])
    index.warm()
    first = index.score(QUERY, COSINE)
    for n in range(40, 50):  # longer items: the average length moves past the drift allowance
        index.put(*_item(n, 30))
    index.put(*_item(7, 60))  # an update replaces the item's slot
    for n in range(0, 40, 2):
        index.remove(n)
    index._compact()
    cached = index.score(QUERY, COSINE)
    title = index.title_similarity({"disk", "full"})
    fresh = _recomputed(index)
    np.testing.assert_allclose(title, index.title_similarity({"disk", "full"}), rtol=1e-6)
    index.warm()  # in bulk, with terms whose every slot was compacted away
    np.testing.assert_allclose(index.score(QUERY, COSINE)[0], fresh[0], rtol=1e-5)
    np.testing.assert_allclose(index.title_similarity({"disk", "full"}), title, rtol=1e-6)
    assert len(first[0]) == 40 and len(cached[0]) == len(fresh[0]) == len(index.docs)
    np.testing.assert_allclose(cached[0], fresh[0], rtol=1e-5)
    np.testing.assert_allclose(cached[1], fresh[1], rtol=1e-5)


def test_small_length_changes_keep_the_bm25_basis() -> None:
    index = TenantIndex(1)
    index.put_many([_item(n, 3) for n in range(200)])
    index.score(QUERY, COSINE)
    basis = index._basis
    index.put(*_item(200, 3))  # the same length as the rest: averages barely move
    bm25, _ = index.score(QUERY, COSINE)
    assert index._basis == basis and bm25[200] > 0
    index.put_many([_item(n, 40) for n in range(201, 260)])
    index.score(QUERY, COSINE)
    assert index._basis != basis
