"""The asker's circle: people ask people they already work with first.

How much a candidate expert has worked with the asker: items they both worked on (which
includes comments on each other's items) and questions the candidate answered for the asker.
Replayed on two trackers with the query's reporter as the asker (never suggested to
themselves), a small lift for such people found the eventual fixer more often on both.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from plugin.models.content import Contribution
from plugin.models.social import Question

WEIGHT = 0.3  # score x (1 + WEIGHT * ln(1 + times together))
ANSWERED = ("answered", "accepted")


def together(session: Session, tenants: Sequence[int], asker: str, accounts: list[str]) -> dict[str, int]:
    """How often each account worked with the asker: shared items plus answered questions."""
    if not accounts:
        return {}
    mine, theirs = aliased(Contribution), aliased(Contribution)
    shared = session.execute(
        select(theirs.account_id, func.count(func.distinct(mine.item_id)))
        .join(theirs, and_(theirs.item_id == mine.item_id, theirs.account_id != mine.account_id))
        .where(mine.tenant_id.in_(tenants), mine.account_id == asker, theirs.account_id.in_(accounts))
        .group_by(theirs.account_id)).all()
    counts = dict(shared)
    answered = session.execute(
        select(Question.expert_account_id, func.count())
        .where(Question.tenant_id.in_(tenants), Question.asker_account_id == asker,
               Question.expert_account_id.in_(accounts), Question.state.in_(ANSWERED))
        .group_by(Question.expert_account_id)).all()
    for account, count in answered:
        counts[account] = counts.get(account, 0) + count
    return counts


def lifted(scores: dict[str, float], counts: dict[str, int], weight: float = WEIGHT) -> dict[str, float]:
    """The scores, each lifted by how much its person worked with the asker."""
    return {a: s * (1.0 + weight * math.log1p(counts.get(a, 0))) for a, s in scores.items()}
