"""Reuse ranking: similar earlier items, answered and helpful ones first."""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from plugin.matching import similarity
from plugin.matching.similarity import Statistics, Vector
from plugin.models.content import Item

RESOLVED_BOOST = 0.05  # answered items win near-ties; more than that buries the open duplicate
HELPFUL_BOOST = 0.3
NOT_RELEVANT_PENALTY = 0.3
COSINE_SHARE = 0.8
# Duplicates and reusable answers cluster in time (the same release, the same outage), so
# among similar items the ones near the target's date are a little likelier to be the match.
TIME_SHARE = 0.5
TIME_HALF_LIFE_DAYS = 365.0
# A duplicate is usually filed under nearly the same title: title-to-title agreement on its own.
TITLE_SHARE = 0.25
# The cosine scores the statement's heaviest terms only: the light tail is mostly common words.
COSINE_TERMS = 40
EXACT_TOP = 20


@dataclass
class ReuseSuggestion:
    """An earlier item worth reusing, with why it was suggested."""

    item_id: int
    source: str
    key: str
    title: str
    url: str | None
    status: str | None
    resolution: str | None
    snippet: str
    score: float
    reasons: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Candidate:
    """An item the engine found, with what ranking reads of it."""

    item_id: int
    terms: Vector
    resolved: bool
    helpful: int
    not_relevant: int
    created: float  # epoch seconds
    norm: float = 0.0  # its statement's tf-idf length, as the engine holds it


def is_resolved(resolution: str | None, status: str | None) -> bool:
    """Whether an item counts as answered: a real resolution, or a done-like status."""
    if resolution:
        return resolution.strip().lower() not in ("unresolved", "")
    return (status or "").strip().lower() in ("done", "resolved", "closed", "answered")


def prior(doc: Candidate, at: float | None = None) -> float:
    """Multiplier for answered, feedback-rated and (when the target's time is known) nearby items."""
    boost = 1.0 + (RESOLVED_BOOST if doc.resolved else 0.0)
    if at is not None:
        days = abs(at - doc.created) / 86400.0
        boost *= (1.0 - TIME_SHARE) + TIME_SHARE * 0.5 ** (days / TIME_HALF_LIFE_DAYS)
    boost *= 1.0 + HELPFUL_BOOST * math.log1p(doc.helpful)
    return boost / (1.0 + NOT_RELEVANT_PENALTY * math.log1p(doc.not_relevant))


def fuse(bm25: np.ndarray, cosine: np.ndarray) -> np.ndarray:
    """Cosine plus BM25 scaled to the best match: both views agree on a good candidate."""
    top = float(bm25.max()) if len(bm25) else 0.0
    return COSINE_SHARE * cosine + (1.0 - COSINE_SHARE) * (bm25 / top if top > 0 else bm25)


def _listed(stats: Statistics) -> Callable[[str], float]:
    return lambda value: stats.cosine_idf(value, exact=False)


def heaviest(cosine_query: dict[str, float]) -> dict[str, float]:
    """The statement's `COSINE_TERMS` heaviest terms, the ones the cosine scores."""
    return dict(sorted(cosine_query.items(), key=lambda tw: (-tw[1], tw[0]))[:COSINE_TERMS])


def rank(stats: Statistics, averages: np.ndarray, pool: Sequence[Candidate], query: dict[str, float],
         heaviest: dict[str, float], exclude: set[int], k: int, at: float | None = None,
         title: set[str] | None = None) -> list[tuple[int, float]]:
    """The k best (item id, score) pairs of the pool, priors applied, excluded items left out."""
    pool = [c for c in pool if c.item_id not in exclude]
    if not pool:
        return []
    vectors = [c.terms for c in pool]
    bm25 = similarity.bm25f(stats, vectors, query, averages)
    cosine = similarity.cosine(stats, vectors, [c.norm for c in pool], heaviest)
    scores = fuse(bm25, cosine)
    if title:
        scores = scores + TITLE_SHARE * similarity.title_agreement(stats, vectors, title)
    # The index's norms date from when each item was indexed (renewed as the site doubles): the
    # best matches, whose order matters most, get theirs from today's statistics.
    top = np.argsort(-scores, kind="stable")[:EXACT_TOP]
    exact = [similarity.statement_norm(similarity.statement(vectors[n]), _listed(stats)) for n in top]
    cosine[top] = similarity.cosine(stats, [vectors[n] for n in top], exact, heaviest)
    scores = fuse(bm25, cosine)
    if title:
        scores = scores + TITLE_SHARE * similarity.title_agreement(stats, vectors, title)
    # Priors reorder the best matches; they never lift an item that matched nothing.
    best = sorted((n for n in range(len(pool)) if scores[n] > 0), key=lambda n: (-scores[n], pool[n].item_id))
    out = [(pool[n].item_id, float(scores[n]) * prior(pool[n], at)) for n in best[:k * 3]]
    out.sort(key=lambda pair: (-pair[1], pair[0]))
    return out[:k]


# A sentence ends at whitespace after . ! or ?, or at a line break. Matching the punctuation (kept
# with its sentence) rather than looking behind for it lets the regex skip ahead: 20 times faster.
_BREAK = re.compile(r"[.!?]\s+|\n+")
SNIPPET_SENTENCES = 60


def sentences(text: str, limit: int = SNIPPET_SENTENCES) -> list[str]:
    """The first `limit` non-blank sentences of a text, stripped."""
    out: list[str] = []
    start = 0
    for match in _BREAK.finditer(text):
        end = match.start() + (text[match.start()] in ".!?")
        piece = text[start:end].strip()
        start = match.end()
        if piece:
            out.append(piece)
            if len(out) >= limit:
                return out
    piece = text[start:].strip()
    return out + [piece] if piece else out


def snippet(text: str, terms: set[str], stem: Callable[[str], list[str]], size: int = 240) -> str:
    """The sentence of the text sharing most terms with the query, cut to size."""
    found = sentences(text[:20_000])
    if not found:
        return ""
    best = max(found, key=lambda s: len(terms.intersection(stem(s))))
    return best[:size] + ("…" if len(best) > size else "")


def reasons(item: Item, query: dict[str, float], meta: list[str], stem: Callable[[str], list[str]]) -> list[str]:
    """Human-readable reasons an item was suggested."""
    out: list[str] = []
    shared = [t for t in stem(item.title) if t in query]
    if shared:
        out.append("similar title")
    common = sorted(set(item.components or []).intersection(meta))
    if common:
        out.append("same component: " + ", ".join(common[:3]))
    if item.resolution:
        out.append(f"resolved ({item.resolution})")
    if item.helpful_count:
        out.append(f"helped {item.helpful_count} time(s) before")
    return out or ["similar text"]
