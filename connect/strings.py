"""Strings a client sent, checked before they reach a database or a response.

JSON and JWTs may carry text no database stores and no page encodes: NUL (PostgreSQL refuses it
in text) and lone UTF-16 surrogates (`"\\ud800"`, which UTF-8 cannot encode); JSON may also carry
numbers past any float (`1e400`). Refused where they arrive, they are a 4xx; let in, they were a
500 wherever they were first written or rendered.
"""
from __future__ import annotations

import math
from typing import Any

ACCOUNT_ID_MAX = 128  # the longest account id the tables keep (Atlassian's are about 60)


def storable(value: str) -> bool:
    """Whether every database stores the string and UTF-8 encodes it."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def all_storable(value: Any) -> bool:
    """Whether every string (keys included) and number of a parsed JSON value can be stored.

    `1e400` parses as infinity, which no JSON column takes back.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return False
    return True


def account_id(value: Any) -> bool:
    """Whether a claimed account id (a JWT's `sub`, a FIT's `principal`) can be one."""
    return isinstance(value, str) and 0 < len(value) <= ACCOUNT_ID_MAX and storable(value)


def cleaned(value: Any) -> Any:
    """A parsed JSON value with NUL dropped, lone surrogates as U+FFFD and non-finite numbers as null.

    For what a host signed: its text is the site's content (a log pasted with a NUL in it), to be
    kept as well as it can be stored rather than refused.
    """
    # Without recursion, as `all_storable`: JSON nests deeper than Python recurses (a body nested
    # 500 deep, which json reads, holding a NUL was a RecursionError here: a 500 for the host).
    root = [value]
    pending: list[tuple[Any, Any]] = [(root, 0)]  # (container, index or key) of a value to clean
    while pending:
        holder, slot = pending.pop()
        item = holder[slot]
        if isinstance(item, str):
            holder[slot] = _cleaned_text(item)
        elif isinstance(item, dict):
            entries = {_cleaned_text(k) if isinstance(k, str) else k: v for k, v in item.items()}
            holder[slot] = entries
            pending.extend((entries, k) for k in entries)
        elif isinstance(item, list):
            values = list(item)
            holder[slot] = values
            pending.extend((values, i) for i in range(len(values)))
        elif isinstance(item, float) and not math.isfinite(item):
            holder[slot] = None
    return root[0]


def _cleaned_text(value: str) -> str:
    """The text without NUL, a lone surrogate as U+FFFD."""
    text = value.replace("\x00", "")
    if storable(text):
        return text
    # Through UTF-16, where a lone surrogate is one undecodable unit: decoding replaces it.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
