"""Snippets: sentences split at end punctuation or line breaks, the best-matching one shown."""
from __future__ import annotations

from plugin.matching.reuse import sentences, snippet
from plugin.matching.text import tokens


def test_sentences_keep_their_punctuation_and_skip_blank_pieces() -> None:
    text = "Disk full. Retry failed!\n\n  Why? e.g.this stays\nlast line "
    assert sentences(text) == ["Disk full.", "Retry failed!", "Why?", "e.g.this stays", "last line"]
    assert sentences("one. two. three.", limit=2) == ["one.", "two."]
    assert sentences(" \n \n") == []


def test_snippet_picks_the_sentence_sharing_most_query_terms() -> None:
    text = "The build is slow. The datanode disk is full on restart. Thanks!"
    assert snippet(text, set(tokens("datanode disk full")), tokens) == "The datanode disk is full on restart."
    assert snippet("zxid " * 60, {"zxid"}, tokens, size=10) == "zxid zxid…"
    assert snippet("The build is slow. Thanks!", set(tokens("datanode")), tokens) == ""  # no match, no snippet
