"""Expert finding: people ranked by their contributions to the items most similar to a target.

Document-centric: each similar item votes for the people who worked on it, weighted by the
item's similarity, the person's role and how recent the work is. A person's confidence is
their share of the total vote the similar items could give, so weak evidence stays weak.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

ROLE_WEIGHTS = {"assignee": 1.0, "resolver": 1.0, "answerer": 0.9, "creator": 0.6, "editor": 0.5,
                "kudos": 0.6, "commenter": 0.45, "reporter": 0.3}
REPEAT_BONUS = 0.1  # each extra contribution to the same item (max three counted)
HALF_LIFE_DAYS = 730.0  # recent work counts more; two-year-old work counts half
LOAD_PENALTY = 0.05  # per open question, up to five: reorders near-equals, never buries a clear best
NEIGHBOURS = 40


@dataclass
class Evidence:
    """An item that made someone an expert, and their role on it."""

    item_id: int
    source: str
    key: str
    title: str
    url: str | None
    role: str


@dataclass
class ExpertSuggestion:
    """A person to ask, why, and how sure we are."""

    account_id: str
    display_name: str | None
    avatar_url: str | None
    score: float
    reason: str
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Vote:
    """One person's vote from one item."""

    item_id: int
    weight: float
    role: str


def item_votes(rows: list[tuple[str, str, datetime]], similarity: float, now: datetime) -> dict[str, Vote]:
    """Each contributor's vote from one item: best role, repeat bonus, recency decay."""
    per_person: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for account, role, at in rows:
        age_days = max(0.0, (now - at).total_seconds() / 86400.0)
        decay = 0.5 ** (age_days / HALF_LIFE_DAYS)
        per_person[account].append((ROLE_WEIGHTS.get(role, 0.3) * decay, role))
    votes: dict[str, Vote] = {}
    for account, weights in per_person.items():
        weights.sort(reverse=True)
        best, role = weights[0]
        bonus = REPEAT_BONUS * best * min(len(weights) - 1, 3)
        votes[account] = Vote(0, similarity * (best + bonus), role)
    return votes


def tally(neighbours: list[tuple[int, float]],
          contributions: dict[int, list[tuple[str, str, datetime]]],
          now: datetime) -> tuple[dict[str, float], dict[str, list[Vote]], float]:
    """Scores per person, their votes, and the total vote available (for confidence)."""
    scores: dict[str, float] = defaultdict(float)
    votes: dict[str, list[Vote]] = defaultdict(list)
    top = neighbours[0][1] if neighbours else 1.0
    available = 0.0
    for item_id, score in neighbours:
        similarity = score / top
        available += similarity
        for account, vote in item_votes(contributions.get(item_id, []), similarity, now).items():
            vote.item_id = item_id
            scores[account] += vote.weight
            votes[account].append(vote)
    return scores, votes, max(available, 1e-9)


def order(scores: dict[str, float], load: Callable[[str], int] | None) -> list[tuple[str, float]]:
    """People best first; open questions shave a little off so near-equals share the load."""
    def adjusted(account: str) -> float:
        penalty = LOAD_PENALTY * min(load(account), 5) if load else 0.0
        return scores[account] * (1.0 - penalty)
    return sorted(((a, adjusted(a)) for a in scores), key=lambda pair: (-pair[1], pair[0]))
