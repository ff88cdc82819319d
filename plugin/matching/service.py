"""Suggestions for a target item: earlier items to reuse and people to ask."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, load_only

from connect.db import utcnow
from plugin.content.model import ItemDoc
from plugin.matching import candidates, experts, reuse
from plugin.matching import circle as circles
from plugin.matching.candidates import among
from plugin.matching.experts import Evidence, ExpertSuggestion
from plugin.matching.query import Target, as_target
from plugin.matching.ranking import Ranking, ranked_for
from plugin.matching.reuse import ReuseSuggestion
from plugin.matching.text import tokens
from plugin.models.content import Item, Person
from plugin.models.social import Question

__all__ = ["ReuseSuggestion", "ExpertSuggestion", "Evidence", "suggest_reuse", "suggest_experts",
           "CONFIDENCE_FLOOR"]

CONFIDENCE_FLOOR = 0.08  # below this share of the evidence we say nothing rather than guess
Visible = Callable[[list[Item]], list[Item]]


# What ranking, reasons, evidence and permission checks read; the rest loads on access.
_SHOWN = (Item.id, Item.tenant_id, Item.source, Item.key, Item.kind, Item.title, Item.project, Item.space,
          Item.components, Item.labels, Item.links, Item.status, Item.resolution, Item.url, Item.external_id,
          Item.helpful_count, Item.not_relevant_count, Item.created)
_HELD = 200  # items a session keeps at hand: reuse and experts for one target rank the same ones
# A snippet's text: the item's text, else its comments.
_BODY = func.coalesce(func.nullif(Item.text, ""), func.nullif(Item.comments_text, ""), "")


class _Statements(NamedTuple):
    """The statements a suggestion runs, for one kind of database."""

    items: Select  # with the bodies of the items likely shown: one round trip, not two
    bodies: Select
    people: Select


def _statements(array: bool) -> _Statements:
    items = (select(Item, case((among(Item.id, "shown", array), _BODY))).options(load_only(*_SHOWN))
             .where(among(Item.tenant_id + 0, "tenants", array), among(Item.id, "ids", array)))
    bodies = select(Item.id, _BODY).where(among(Item.tenant_id + 0, "tenants", array), among(Item.id, "ids", array))
    # Each of a site's tenants knows its own people: a name either knows is shown.
    people = (select(Person.account_id, Person.display_name, Person.avatar_url)
              .where(among(Person.tenant_id, "tenants", array), among(Person.account_id, "accounts", array))
              # The row kept is the last: a named one, with an avatar if any has one, then by tenant.
              .order_by(Person.display_name.is_not(None), Person.avatar_url.is_not(None), Person.tenant_id))
    return _Statements(items, bodies, people)


_PORTABLE, _ARRAYS = _statements(False), _statements(True)


def _statements_for(session: Session) -> _Statements:
    return _ARRAYS if session.get_bind().dialect.name == "postgresql" else _PORTABLE


def _load_items(session: Session, tenants: Sequence[int], ids: list[int], bodies: dict[int, str] | None = None,
                likely_shown: list[int] | None = None) -> dict[int, Item]:
    """The items by id (this session's recent ones when at hand); `bodies` gets those of `likely_shown` it read."""
    if not ids:
        return {}
    held: dict[int, Item] = session.info.setdefault("matching_items", {})
    found = {i: held[i] for i in ids if i in held and held[i].tenant_id in tenants}
    missing = [i for i in ids if i not in found]
    if missing:
        rows = session.execute(_statements_for(session).items, {"tenants": list(tenants), "ids": missing,
                                                                "shown": likely_shown or []}).tuples()
        for item, body in rows:
            found[item.id] = item
            if body is not None and bodies is not None:
                bodies[item.id] = body
        held.update((i, found[i]) for i in missing if i in found)
        while len(held) > _HELD:
            held.pop(next(iter(held)))
    return found


def _visible(items: list[Item], visible: Visible | None) -> list[Item]:
    if visible is None or not items:
        return items
    allowed = {item.id for item in visible(items)}
    return [item for item in items if item.id in allowed]


def suggest_reuse(session: Session, tenant_id: int, target: Item | ItemDoc | str, limit: int = 5,
                  visible: Visible | None = None) -> list[ReuseSuggestion]:
    """Earlier items like the target, answered and helpful first, that the viewer may see."""
    goal = as_target(session, tenant_id, target)
    wanted = max(limit * 4, 20)  # candidates, before permissions and the limit thin them
    ranking = ranked_for(session, tenant_id, goal, wanted)
    if ranking is None:
        return []
    pool = ranking.ranked
    # The whole pool and the neighbours experts vote with (ranked by words alone, so not all in the
    # pool) in one query: experts for the same target then find their items at hand.
    neighbours = [item_id for item_id, _ in ranking.similar[:experts.NEIGHBOURS]]
    bodies: dict[int, str] = {}
    items = _load_items(session, ranking.tenants, list(dict.fromkeys([i for i, _ in pool] + neighbours)), bodies,
                        [item_id for item_id, _ in pool[:limit]])  # unless permissions hide some
    ranked = pool[:wanted]
    shown = _visible([items[i] for i, _ in ranked if i in items], visible)[:limit]
    scores = dict(ranked)
    bodies.update(_bodies(session, ranking.tenants, [item.id for item in shown if item.id not in bodies]))
    weights = _weights(ranking)
    viewed = _viewed(goal, target)
    similar = {item.key for item in shown if item.source == "jira"}
    return [_reuse(item, bodies.get(item.id, ""), scores[item.id], viewed, weights, similar - {item.key})
            for item in shown]


def _weights(ranking: Ranking) -> dict[str, float]:
    """How telling each query term is: its idf times its weight in the query, as the query chose its terms.

    Idf alone favours words that are rare by accident ("occasionally"); the query weight favours
    what the viewed item is about (its title and components). A machine that sent no idf leaves the weight.
    """
    return {t: w * ranking.idf.get(t, 1.0) for t, w in ranking.query.items()}


def _viewed(goal: Target, target: Item | ItemDoc | str) -> reuse.Viewed:
    """What reasons compare suggestions with: the viewed item's texts, components, labels, space and links."""
    return reuse.Viewed(f"{goal.title}\n{goal.text[:20_000]}\n{goal.comments[:20_000]}", frozenset(goal.meta),
                        goal.key, goal.source, getattr(target, "space", None), frozenset(goal.links))


def _reuse(item: Item, body: str, score: float, viewed: reuse.Viewed, weights: dict[str, float],
           similar: set[str]) -> ReuseSuggestion:
    """One suggestion: its best passage with the matches marked, and the evidence it shares."""
    shown = reuse.passage(body, weights, tokens)
    why, words = reuse.reasons(item, body, viewed, weights, similar)
    return ReuseSuggestion(item.id, item.source, item.key, item.title, item.url, item.status, item.resolution,
                           shown.text, round(score, 4), why, snippet_marks=shown.marks, shared_terms=words)


def _bodies(session: Session, tenants: Sequence[int], ids: list[int]) -> dict[int, str]:
    """The text (else the comments) of the shown items, in one query rather than a load per item."""
    if not ids:
        return {}
    return dict(session.execute(_statements_for(session).bodies, {"tenants": list(tenants), "ids": ids}).tuples().all())


def _neighbours(session: Session, tenant_id: int, goal: Target, visible: Visible | None,
                now: datetime) -> tuple[dict[int, Item], experts.Tally, tuple[int, ...]]:
    ranking = ranked_for(session, tenant_id, goal, experts.NEIGHBOURS)
    if ranking is None:
        return {}, ({}, {}, 1e-9, {}), (tenant_id,)
    ranked = ranking.similar[:experts.NEIGHBOURS]
    items = _load_items(session, ranking.tenants, [item_id for item_id, _ in ranked])
    # People are only ranked on items the viewer may see, so nothing hidden leaks into a reason.
    seen = {item.id for item in _visible(list(items.values()), visible)}
    neighbours = [(i, s) for i, s in ranked if i in seen]
    scores, votes, available = experts.tally(candidates.people(session, ranking.tenants, [i for i, _ in neighbours]),
                                             neighbours, now)
    accounts = list(scores)
    touched, owned = ranking.worked_on(accounts)
    prior = experts.ownership_prior(touched, owned, ranking.owning_share, accounts)
    return items, (scores, votes, available, prior), ranking.tenants


def suggest_experts(session: Session, tenant_id: int, target: Item | ItemDoc | str, limit: int = 5,
                    asker: str | None = None, visible: Visible | None = None,
                    eligible: Callable[[str], bool] | None = None,
                    load: Callable[[str], int] | None = None, now: datetime | None = None,
                    min_confidence: float = CONFIDENCE_FLOOR, circle: bool = True) -> list[ExpertSuggestion]:
    """People who worked on the most similar items, with evidence, above a confidence floor.

    The asker is never suggested; with `circle`, people who worked with the asker rank a little higher.
    """
    goal = as_target(session, tenant_id, target)
    items, (scores, votes, available, prior), tenants = _neighbours(session, tenant_id, goal, visible,
                                                                    now or utcnow())
    ranked = {account: score * prior[account] for account, score in scores.items()}
    if asker and circle:
        ranked = circles.lifted(ranked, circles.together(session, tenants, asker, list(ranked)))
    picked: list[tuple[str, float]] = []
    for account, score in experts.order(ranked, load):
        if account == asker or scores[account] / available < min_confidence:
            continue
        if eligible is not None and not eligible(account):
            continue
        picked.append((account, score))
        if len(picked) >= limit:
            break
    people = profiles(session, tenants, [a for a, _ in picked])
    answered = _answered_here(session, tenants, goal.source, goal.project or getattr(target, "space", None),
                              [a for a, _ in picked])
    return [_expert(account, score, scores[account] / available, votes[account], items, people.get(account),
                    answered.get(account, 0))
            for account, score in picked]


def _answered_here(session: Session, tenants: Sequence[int], source: str | None, place: str | None,
                   accounts: list[str]) -> dict[str, int]:
    """Questions asked through Inflow in this project (or space) that each person answered."""
    if not accounts or not source or not place:
        return {}  # free text, or an item of no known project: no "here" to count in
    rows = session.execute(select(Question.expert_account_id, func.count(Question.id)).where(
        Question.tenant_id.in_(list(tenants)), Question.source == source, Question.project == place,
        Question.state.in_(("answered", "accepted")), Question.expert_account_id.in_(accounts))
        .group_by(Question.expert_account_id))
    return {account: int(n) for account, n in rows}


def profiles(session: Session, tenants: Sequence[int], accounts: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """(display name, avatar url) of each known account: plain rows, no ORM objects to build."""
    if not accounts:
        return {}
    rows = session.execute(_statements_for(session).people, {"tenants": list(tenants), "accounts": accounts})
    return {account: (name, avatar) for account, name, avatar in rows}


def _expert(account: str, score: float, confidence: float, votes: list[experts.Vote],
            items: dict[int, Item], person: tuple[str | None, str | None] | None,
            answered_here: int = 0) -> ExpertSuggestion:
    best = sorted(votes, key=lambda v: (-v.weight, v.item_id))[:3]
    evidence = [Evidence(v.item_id, items[v.item_id].source, items[v.item_id].key,
                         items[v.item_id].title, items[v.item_id].url, v.role) for v in best]
    similar = [(v.item_id, v.role) for v in votes]
    name, avatar = person or (None, None)
    return ExpertSuggestion(account, name, avatar, round(score, 4), experts.reason_for(similar, confidence),
                            evidence, answered_here, similar)
