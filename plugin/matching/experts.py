"""Expert finding: people ranked by their contributions to the items most similar to a target.

Document-centric (Balog et al.'s Model 2): each similar item votes for the people who worked on
it, weighted by the item's similarity, the person's role and how recent the work is. A person's
confidence is their share of the total vote the similar items could give, so weak evidence
stays weak. The ranking multiplies the votes by a prior: how often the person did the work on
the items they appear on, since accounts that only ever comment (CI bots, mailing-list
gateways, bystanders) turn up on many items without ever taking one on.

A candidate-centric profile model (each person's items pooled into one text, scored with BM25
or a smoothed language model) was evaluated beside this one and lost at every fusion weight on
both replayed trackers, so it is not used; nor is an activity-window prior, which the recency
decay of the votes already covers.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from plugin.matching.roles import done, role_weight

REPEAT_BONUS = 0.1  # each extra contribution to the same item (max three counted)
# Recent work counts more; year-old work counts half. Replays of two trackers agree that
# people's focus moves on within about a year (longer half-lives ranked worse on both).
HALF_LIFE_DAYS = 365.0
LOAD_PENALTY = 0.05  # per open question, up to five: reorders near-equals, never buries a clear best
NEIGHBOURS = 40
# The ownership prior: a person's share of items they did the work on, smoothed towards the
# tenant's average with this many pseudo-items, and softened (square root) so it reorders
# comparable people and buries only those who never take anything on.
PRIOR_PSEUDO_ITEMS = 10.0
PRIOR_EXPONENT = 0.5


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
    # Questions asked through Inflow in the viewed item's project (or space) that they answered.
    # Rows stored before this field existed load with 0.
    answered_here: int = 0
    # Every similar item they worked on, (item id, role): what `reason` counts. Stored ones are
    # counted again for each viewer. Rows stored before this field existed load with none.
    similar: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Vote:
    """One person's vote from one item."""

    item_id: int
    weight: float
    role: str


# (votes per person, each person's votes, total vote available, ownership prior per person)
Tally = tuple[dict[str, float], dict[str, list[Vote]], float, dict[str, float]]


def reason_for(work: Sequence[tuple[int, str]], confidence: float | None) -> str:
    """Why someone is suggested: "4 similar item(s) as commenter, resolver; confidence 35%"."""
    said = f"{len(work)} similar item(s) as {', '.join(sorted({role for _, role in work}))}"
    return said if confidence is None else f"{said}; confidence {round(100 * min(confidence, 1.0))}%"


def _decay(age_seconds: float) -> float:
    return 0.5 ** (max(0.0, age_seconds) / 86400.0 / HALF_LIFE_DAYS)


def item_votes(rows: list[tuple[str, str, float, int]], similarity: float, now: float) -> dict[str, Vote]:
    """Each contributor's vote from one item: best role, repeat bonus, recency decay.

    `rows` hold (account, best role, epoch seconds of their latest work, contributions).
    """
    votes: dict[str, Vote] = {}
    for account, role, at, times in rows:
        best = role_weight(role) * _decay(now - at)
        bonus = REPEAT_BONUS * best * min(times - 1, 3)
        votes[account] = Vote(0, similarity * (best + bonus), role)
    return votes


def tally(rows: dict[int, list[tuple[str, str, float, int]]], neighbours: list[tuple[int, float]],
          now: datetime) -> tuple[dict[str, float], dict[str, list[Vote]], float]:
    """Votes per person, their votes, and the total vote available (for confidence).

    `rows` hold who worked on each neighbour: (account, best role, latest time, contributions).
    """
    scores: dict[str, float] = defaultdict(float)
    votes: dict[str, list[Vote]] = defaultdict(list)
    top = neighbours[0][1] if neighbours else 1.0
    available = 0.0
    for item_id, score in neighbours:
        similarity = score / top
        people = rows.get(item_id, [])
        # What this item could give at its age: confidence judges the evidence, not its age.
        latest = max((at for _, _, at, _ in people), default=now.timestamp())
        available += similarity * _decay(now.timestamp() - latest)
        for account, vote in item_votes(people, similarity, now.timestamp()).items():
            vote.item_id = item_id
            scores[account] += vote.weight
            votes[account].append(vote)
    return scores, votes, max(available, 1e-9)


def ownership_prior(touched: np.ndarray, owned: np.ndarray, average: float,
                    accounts: list[str]) -> dict[str, float]:
    """How likely each person is to take work on, from the items they worked on and did the work on."""
    share = (owned + PRIOR_PSEUDO_ITEMS * average) / (touched + PRIOR_PSEUDO_ITEMS)
    return dict(zip(accounts, np.power(np.maximum(share, 1e-6), PRIOR_EXPONENT).tolist(), strict=False))


def order(scores: dict[str, float], load: Callable[[str], int] | None) -> list[tuple[str, float]]:
    """People best first; open questions shave a little off so near-equals share the load."""
    def adjusted(account: str) -> float:
        penalty = LOAD_PENALTY * min(load(account), 5) if load else 0.0
        return scores[account] * (1.0 - penalty)
    return sorted(((a, adjusted(a)) for a in scores), key=lambda pair: (-pair[1], pair[0]))


def _field(evidence: Evidence | Mapping[str, Any], name: str) -> Any:
    """An evidence field, whether it is an `Evidence` or the dict a panel made of one."""
    return evidence.get(name) if isinstance(evidence, Mapping) else getattr(evidence, name)


def work_groups(evidence: Sequence[Evidence | Mapping[str, Any]]) -> list[tuple[str, list[Any]]]:
    """The evidence grouped by what the person did, strongest work first: [("resolved", [ev, ...]), ...]."""
    groups: dict[str, list[Any]] = {}
    for ev in evidence:
        groups.setdefault(done(_field(ev, "role")), []).append(ev)
    return list(groups.items())


def _name(evidence: Evidence | Mapping[str, Any]) -> str:
    """An issue by its key; a page by its title, since its key is a number nobody knows."""
    if _field(evidence, "source") == "jira":
        return str(_field(evidence, "key"))
    title = str(_field(evidence, "title") or _field(evidence, "key"))
    return f'"{title[:60]}{"…" if len(title) > 60 else ""}"'


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def work_line(evidence: Sequence[Evidence | Mapping[str, Any]], answered_here: int = 0) -> str:
    """The concrete work behind a suggestion: "resolved AMQ-1 and AMQ-2; commented on AMQ-7; answered 2 questions here".

    Built from the evidence as shown, so items hidden from the viewer are never named.
    """
    parts = [f"{verb} {_listed([_name(ev) for ev in items])}" for verb, items in work_groups(evidence)]
    if answered_here:
        parts.append(f"answered {answered_here} question{'s' if answered_here != 1 else ''} here")
    return "; ".join(parts)
