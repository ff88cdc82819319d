"""Reuse snippets come from each shown item's text, else its comments, however the bodies were read.

The bodies of the best few candidates come with the items in one statement; items a permission
check hides let later ones be shown, whose bodies are then read on their own.
"""
from __future__ import annotations

from plugin.content.model import ItemDoc
from plugin.matching.service import suggest_reuse
from plugin.matching.store import store_items
from tests.matching.helpers import database, doc, indexed


def _items() -> list[ItemDoc]:
    docs = [doc(f"APP-{n}", f"Login page times out after upgrade {n}", f"Login times out on node {n}.")
            for n in range(1, 9)]
    docs[1].text = ""
    docs[1].comments = ["Login timeout: raise the proxy limit."]
    docs[2].text, docs[2].comments = "", []
    return docs


def test_snippets_match_the_item_bodies_with_and_without_hidden_items(database_url: str) -> None:
    db, tenant = database(database_url)
    docs = _items()
    with db.session() as s:
        store_items(s, tenant, docs)
    indexed(db)
    expected = {d.key: (d.text or "\n\n".join(d.comments)) for d in docs}
    for hidden in (set(), {"APP-1", "APP-2", "APP-4"}):
        with db.session() as s:
            found = suggest_reuse(s, tenant, "login page times out", limit=4,
                                  visible=lambda items, hidden=hidden: [i for i in items if i.key not in hidden])
        assert len(found) == 4 and not {f.key for f in found} & hidden
        for suggestion in found:
            body = expected[suggestion.key]
            assert (suggestion.snippet in body) if body else suggestion.snippet == ""
            assert bool(suggestion.snippet) == bool(body)
    db.dispose()
