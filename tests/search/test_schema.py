"""The engine's document: each term as often as its fields' weights say, scoped to its site."""
from __future__ import annotations

from collections import Counter

from plugin.search.schema import MAX_REPEATS, _weighted


def test_each_term_is_repeated_by_its_weighted_frequency_in_both_texts() -> None:
    terms = {"t": {"disk": 2, "full": 1}, "d": {"disk": 1, "log": 50, "full": 1}, "c": {"node": 3},
             "m": {"hdfs": 1}}
    every, stated = _weighted(7, terms)
    assert Counter(every.split()) == {"7:disk:7": 2 * 5 + 2, "7:full:7": 5 + 2, "7:log:7": MAX_REPEATS,
                                      "7:node:7": 3, "7:hdfs:7": 3}
    assert Counter(stated.split()) == {"7:disk:7": 2 * 2 + 1, "7:full:7": 2 + 1, "7:log:7": MAX_REPEATS,
                                       "7:hdfs:7": 1}  # comments are not part of the statement
    assert every.endswith(" ") and "  " not in every and "  " not in stated
