"""What a query is: weighted terms from a target, and the items a target must never be matched to."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from plugin.content.model import ItemDoc
from plugin.matching.similarity import Statistics
from plugin.matching.text import tokens
from plugin.models.content import Item

QUERY_FIELD_WEIGHTS = {"t": 2.0, "d": 1.0, "c": 0.3, "m": 1.0}
K3 = 2.0  # query-term saturation: a stack trace repeating a word is not that word's weight x50
MAX_QUERY_TERMS = 64
# A stack frame line ("at org.pkg.Class.method(File.java:12)", "... 12 more"), also in table cells.
_FRAME = re.compile(r"^[\s|]*(?:at\s+[\w$.<>/]+\([^()\n]*\)(?:\s*~?\[[^\[\]\n]*\])?"
                    r"|\.\.\. \d+ (?:more|common frames omitted))[\s|]*$")
# A trace's top frames say where it failed; the deeper ones are the test runner, reflection and
# thread pool that every trace shares: kept, they make all reports with a trace look alike.
TOP_FRAMES = 3
_TEXTS = ("text", "comments_text", "title_vector")  # an item's columns a query reads, loaded lazily


@dataclass
class Target:
    """The thing suggestions are for, reduced to fields, its own id and what it already links to."""

    title: str
    text: str
    comments: str = ""
    meta: list[str] = field(default_factory=list)
    source: str | None = None
    item_id: int | None = None
    key: str | None = None
    links: list[str] = field(default_factory=list)
    project: str | None = None
    at: float | None = None  # when the target was created (epoch seconds), if it is an item
    title_vector: bytes | None = None  # as stored with the item (`plugin.matching.semantic`)


def as_target(session: Session, tenant_id: int, target: Item | ItemDoc | str) -> Target:
    """A `Target` from a stored item, a normalised doc, or free text (a question typed by a user)."""
    if isinstance(target, str):
        return Target(title=target, text="")
    if isinstance(target, Item):
        _load_texts(target)
        return Target(target.title, target.text, target.comments_text or "",
                      list(target.components or []) + list(target.labels or []), target.source,
                      target.id, target.key, list(target.links or []), target.project,
                      target.created.timestamp() if target.created else None, target.title_vector)
    stored_id = session.scalar(select(Item.id).where(
        Item.tenant_id == tenant_id, Item.source == target.source, Item.key == target.key))
    return Target(target.title, target.text, "\n".join(target.comments),
                  list(target.components) + list(target.labels), target.source, stored_id,
                  target.key, list(target.links), target.project, target.created.timestamp())


def _load_texts(item: Item) -> None:
    """An item read without its texts (panels defer them) gets both in one query, not one each."""
    state = inspect(item)
    if state.session is not None and not state.unloaded.isdisjoint(_TEXTS):
        state.session.refresh(item, [name for name in _TEXTS if name in state.unloaded])


def without_deep_frames(text: str) -> str:
    """The text with each stack trace cut to its top frames."""
    lines, depth = [], 0
    for line in text.splitlines():
        depth = depth + 1 if _FRAME.match(line) else 0
        if depth <= TOP_FRAMES:
            lines.append(line)
    return "\n".join(lines)


def query_terms(stats: Statistics, target: Target) -> dict[str, float]:
    """The target's most informative terms, weighted by field and saturated by frequency."""
    raw: dict[str, float] = {}
    texts = {"t": target.title, "d": without_deep_frames(target.text[:20_000]),
             "c": without_deep_frames(target.comments[:20_000]), "m": " ".join(target.meta)}
    for name, text in texts.items():
        for term in tokens(text):
            raw[term] = raw.get(term, 0.0) + QUERY_FIELD_WEIGHTS[name]
    weighted = {t: w * (K3 + 1) / (K3 + w) for t, w in raw.items()}
    ranked = sorted(weighted, key=lambda t: (-stats.idf(t) * weighted[t], t))[:MAX_QUERY_TERMS]
    return {t: weighted[t] for t in ranked if stats.idf(t) > 0}


def cosine_terms(stats: Statistics, target: Target) -> dict[str, float]:
    """The target's statement (title twice, body, meta) as a unit-length sublinear tf-idf vector."""
    counts: dict[str, float] = {}
    body = without_deep_frames(target.text[:20_000])
    for text, weight in ((target.title, 2.0), (body, 1.0), (" ".join(target.meta), 1.0)):
        for term in tokens(text):
            counts[term] = counts.get(term, 0.0) + weight
    vector = {t: (1.0 + math.log(c)) * stats.cosine_idf(t) for t, c in counts.items()}
    norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
    return {t: v / norm for t, v in vector.items() if v > 0}


def excluded_ids(session: Session, tenant_id: int, target: Target) -> set[int]:
    """The target itself and the items it already links to."""
    ids = {target.item_id} if target.item_id else set()
    if target.links:
        source = target.source or "jira"
        ids.update(session.scalars(select(Item.id).where(
            Item.tenant_id == tenant_id, Item.source == source, Item.key.in_(target.links[:500]))))
    return ids
