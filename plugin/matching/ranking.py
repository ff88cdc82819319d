"""One target's ranking: the engine's candidates ranked by Inflow, on the machine holding its site.

A site's shard lives on one machine. There the ranking is computed directly; anywhere else it is
asked of that machine's workers over Redis with a short deadline (`plugin.search.remote`), and
comes back as plain data. Everything after it (items, bodies, permissions, votes) reads the
shared database, so both paths give the same suggestions.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from plugin.matching import candidates, experts, reuse, semantic
from plugin.matching.query import Target, cosine_terms, excluded_ids, query_terms
from plugin.matching.text import tokens
from plugin.search import Elsewhere, NotIndexed, SiteView, remote, settings_for, site_view

RANKED_POOL = 40  # neighbours ranked per target at least, so both kinds of suggestion share one pass
# Candidates each engine query gives Inflow's own ranking: enough that the best of the full
# ranking is among them (chosen on the replays of three real trackers; see the commit that set it).
ENGINE_POOL = 200


@dataclass
class Ranking:
    """A target's query terms and its most similar items, with what expert votes need of the site."""

    query: dict[str, float]
    ranked: list[tuple[int, float]]  # by words and meaning: reuse suggestions
    owning_share: float
    tenants: tuple[int, ...]  # the site's tenants whose items the ranking may hold (one per product)
    # (items worked on, items the work was done on) per person: asked of the view when local,
    # given for the people of the best neighbours when the ranking came from another machine.
    people: dict[str, tuple[float, float]] = field(default_factory=dict)
    view: SiteView | None = None
    # Each query term's idf: reasons name the rarest words a suggestion shares (ranking never reads it).
    idf: dict[str, float] = field(default_factory=dict)
    # By words alone: the neighbours experts are drawn from (`reuse.Ranked`); None: as `ranked`.
    neighbours: list[tuple[int, float]] | None = None

    @property
    def similar(self) -> list[tuple[int, float]]:
        """The neighbours whose people experts are drawn from."""
        return self.ranked if self.neighbours is None else self.neighbours

    def worked_on(self, accounts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(items each person worked on, items they did the work on) in the site."""
        if self.view is not None:
            return self.view.worked_on(accounts)
        counts = [self.people.get(a, (0.0, 0.0)) for a in accounts]
        return (np.array([c[0] for c in counts], dtype=np.float64),
                np.array([c[1] for c in counts], dtype=np.float64))

    def as_json(self) -> dict[str, Any]:
        """Plain data to send to another machine."""
        return {"query": self.query, "ranked": self.ranked, "owning_share": self.owning_share,
                "tenants": list(self.tenants), "people": self.people, "idf": self.idf,
                "neighbours": self.similar}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ranking:
        """The ranking another machine sent."""
        return cls(dict(data["query"]), [(int(i), float(s)) for i, s in data["ranked"]],
                   float(data["owning_share"]), tuple(int(t) for t in data["tenants"]),
                   {a: (float(t), float(o)) for a, (t, o) in data["people"].items()},
                   # A machine on the previous release sends none: reasons then go by query weight.
                   idf={t: float(v) for t, v in (data.get("idf") or {}).items()},
                   # ... and no neighbours apart: experts then draw on the suggestions' items.
                   neighbours=[(int(i), float(s)) for i, s in data["neighbours"]] if data.get("neighbours") else None)


def rank_here(session: Session, tenant_id: int, view: SiteView, goal: Target, k: int) -> Ranking:
    """Rank on this machine's shard: two engine queries, then Inflow's own ranking of their union."""
    query = query_terms(view, goal)
    heaviest = reuse.heaviest(cosine_terms(view, goal))
    # One engine query per view of similarity that ranking weighs most: the whole item for its
    # BM25F, the statement (title, description, components) for its cosine.
    size = max(ENGINE_POOL, k)
    by_all, by_statement = view.candidates_at_once([(query, size, "all"), (heaviest, size, "statement")])
    # The target and what it links to are never suggested: left out before their rows are read.
    exclude = excluded_ids(session, tenant_id, goal)
    hits = {hit.item_id: hit for hit in by_all if hit.item_id not in exclude}
    hits |= {hit.item_id: hit for hit in by_statement if hit.item_id not in exclude}
    pool = candidates.load(session, view.members, list(hits))
    for candidate in pool.items:
        hit = hits[candidate.item_id]
        candidate.norm, candidate.norm_is_current = hit.norm, hit.basis == int(view.count)
    ranked = reuse.rank(view, view.averages().lengths, pool, query, heaviest,
                        exclude, k, goal.at, set(tokens(goal.title)),
                        meaning=semantic.of_title(goal.title, goal.title_vector))
    return Ranking(query, ranked.reuse, view.averages().owning_share, view.members, view=view,
                   idf={t: view.idf(t) for t in query}, neighbours=ranked.neighbours)


def answer(session: Session, tenant_id: int, goal: Target, k: int) -> dict[str, Any] | None:
    """A ranking for another machine, with the people counts of its best neighbours' contributors."""
    try:
        view = site_view(session, tenant_id)
    except NotIndexed:
        return None
    ranking = rank_here(session, tenant_id, view, goal, max(k, RANKED_POOL))
    best = [item_id for item_id, _ in ranking.similar[:experts.NEIGHBOURS]]
    accounts = sorted({row[0] for rows in candidates.people(session, view.members, best).values() for row in rows})
    touched, owned = view.worked_on(accounts)
    ranking.people = dict(zip(accounts, zip(touched.tolist(), owned.tolist(), strict=False), strict=False))
    return ranking.as_json()


def ranked_for(session: Session, tenant_id: int, goal: Target, k: int) -> Ranking | None:
    """The target's ranking (at least `RANKED_POOL` deep), shared by reuse and experts in a session.

    None when no index can rank the site now: not indexed yet, or its machine did not answer in time.
    """
    pool = max(k, RANKED_POOL)
    # The last ranking of this session: reuse and experts for one target (as a refresh asks) rank once.
    key = (tenant_id, pool, goal.title, goal.text, goal.comments, tuple(goal.meta), goal.at, goal.item_id,
           tuple(goal.links))
    last = session.info.get("matching_ranking")
    if last is not None and last[0] == key:
        return last[1]
    try:
        ranking: Ranking | None = rank_here(session, tenant_id, site_view(session, tenant_id), goal, pool)
    except Elsewhere as away:
        found = remote.ask(settings_for(session), away.shard, "jobs.search.rank", tenant_id,
                           dataclasses.asdict(goal), pool)
        ranking = Ranking.from_json(found) if found else None
    except NotIndexed:
        ranking = None
    session.info["matching_ranking"] = (key, ranking)
    return ranking
