"""Title vectors: meaning where the words differ, stored with each item and used by reuse only."""
from __future__ import annotations

import numpy as np
from sqlalchemy import select

from plugin.matching import semantic
from plugin.matching.service import suggest_experts, suggest_reuse
from plugin.matching.store import get_item
from plugin.models.content import Item
from tests.matching.helpers import database, doc, store


def test_titles_that_say_the_same_in_other_words_are_close() -> None:
    vectors = semantic.vectors(["Broker drops messages after restart",
                                "Messages lost when the broker restarts",
                                "Typo on the download page", ""])
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()  # no token, no direction
    same, other = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert same > 0.5 > other


def test_a_stored_vector_keeps_the_cosine_and_unknown_ones_count_nothing() -> None:
    titles = ["Messages lost when the broker restarts", "Typo on the download page"]
    exact = semantic.vectors(titles) @ semantic.vectors(["Broker drops messages after restart"])[0]
    query = semantic.of_title("Broker drops messages after restart")
    stored = semantic.agreement(query, [*semantic.packed_titles(titles), None, b"x"])
    assert np.allclose(stored[:2], np.maximum(exact, 0), atol=0.02)
    assert list(stored[2:]) == [0.0, 0.0]
    packed = semantic.packed_titles(["Broker drops messages after restart"])[0]
    assert np.allclose(semantic.of_title("ignored when stored", packed), query, atol=0.02)


def test_items_are_stored_with_their_title_vector(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    store(db, tenant, doc("APP-1", "Broker drops messages after restart"))
    with db.session() as session:
        stored = session.scalar(select(Item.title_vector).where(Item.key == "APP-1"))
    assert stored == semantic.packed_titles(["Broker drops messages after restart"])[0]


def test_meaning_lifts_the_paraphrase_in_reuse_and_leaves_experts_to_words(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    # Both earlier issues share the same two words with the new one; one of them means the same.
    store(db, tenant,
          doc("APP-1", "Broker restart slow on startup", "broker restart", days=1, people={"ann": "assignee"}),
          doc("APP-2", "Messages vanish when broker restart happens", "broker restart", days=2,
              people={"bob": "assignee"}),
          doc("APP-3", "Broker restart drops queued messages", "broker restart", days=3))
    with db.session() as session:
        target = get_item(session, tenant, "jira", "APP-3")
        keys = [r.key for r in suggest_reuse(session, tenant, target, limit=2)]
        words = session.info["matching_ranking"][1]
        assert keys[0] == "APP-2"
        assert words.neighbours is not None and words.neighbours != words.ranked  # experts: words alone
        assert {e.account_id for e in suggest_experts(session, tenant, target, limit=5)} <= {"ann", "bob"}
