"""Per-item term vectors by field: what the store persists and every index cache rebuilds from."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

import orjson

from plugin.matching.text import term_counts

# Fields of a term vector: title, description/body, comments, meta (components and labels).
FIELDS = ("t", "d", "c", "m")
MAX_TERMS_PER_FIELD = 4_000  # the most frequent terms of a field are kept; the tail adds no signal


def _top(counts: dict[str, int]) -> dict[str, int]:
    if len(counts) <= MAX_TERMS_PER_FIELD:
        return counts
    return dict(Counter(counts).most_common(MAX_TERMS_PER_FIELD))


def term_vector(title: str, text: str, comments: list[str] | str, meta: list[str]) -> dict[str, Any]:
    """{"t"|"d"|"c"|"m": {term: tf}} for an item's fields."""
    comment_text = comments if isinstance(comments, str) else "\n".join(comments)
    return {
        "t": _top(term_counts(title)),
        "d": _top(term_counts(text)),
        "c": _top(term_counts(comment_text)),
        "m": _top(term_counts(" ".join(meta))),
    }


def to_json(value: Any) -> str:
    """JSON text of a stored value (orjson; json for what only it can write)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # such as a lone surrogate in a label
        return json.dumps(value)
