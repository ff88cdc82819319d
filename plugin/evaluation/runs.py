"""The two evaluations: reuse (duplicate retrieval) and experts (who fixed it), each with its baseline."""
from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Container
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from plugin.content.normalize import jira_issue_to_doc
from plugin.evaluation.baseline import TfIdf, baseline_text
from plugin.evaluation.history import created_at
from plugin.evaluation.metrics import EXPERT_KS, REUSE_KS, summarise
from plugin.evaluation.replay import SITE, replay
from plugin.matching.service import suggest_experts, suggest_reuse

REUSE_DEPTH = 100  # ranks beyond this count as misses; 1/100 is noise in an MRR
EXPERT_DEPTH = 20
BASELINE_NEIGHBOURS = 30


def load_truth(path: str) -> dict[str, set[str]]:
    """query key -> keys of the earlier issues it duplicates."""
    truth: dict[str, set[str]] = defaultdict(set)
    with Path(path).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            truth[row["query"].strip()].add(row["duplicate_of"].strip())
    return dict(truth)


def _rank(ranked: list[str], wanted: Container[str | None]) -> int | None:
    return next((i + 1 for i, key in enumerate(ranked) if key in wanted), None)


def evaluate_reuse(issues: list[dict[str, Any]], truth: dict[str, set[str]]) -> dict[str, Any]:
    """Replay the history; each truth query asks for reuse suggestions among earlier issues."""
    known = {issue["key"] for issue in issues}
    truth = {q: d & known for q, d in truth.items() if q in known and d & known}
    ranks: dict[str, int | None] = {}

    def ask(session: Session, tenant_id: int, issue: dict[str, Any]) -> None:
        found = suggest_reuse(session, tenant_id, jira_issue_to_doc(issue, SITE), limit=REUSE_DEPTH)
        ranks[issue["key"]] = _rank([s.key for s in found], truth[issue["key"]])

    replay(issues, set(truth), ask)
    result: dict[str, Any] = summarise([ranks.get(q) for q in sorted(truth)], REUSE_KS, "recall")
    result["baseline"] = summarise(_baseline_reuse(issues, truth), REUSE_KS, "recall")
    return result


def _baseline_reuse(issues: list[dict[str, Any]], truth: dict[str, set[str]]) -> list[int | None]:
    tfidf = TfIdf([baseline_text(i) for i in issues])
    position = {issue["key"]: n for n, issue in enumerate(issues)}
    ranks: list[int | None] = []
    for query in sorted(truth):
        q = position[query]
        sims = tfidf.similarities(q)
        earlier = np.array([created_at(issues[d]) < created_at(issues[q]) for d in range(len(issues))])
        wanted = [position[d] for d in truth[query] if earlier[position[d]]]
        if not wanted:
            ranks.append(None)
            continue
        best = max(sims[w] for w in wanted)
        ranks.append(int(np.sum(earlier & (sims > best))) + 1)
    return ranks


def _assignee(issue: dict[str, Any]) -> str | None:
    user = (issue.get("fields") or {}).get("assignee")
    return (user.get("accountId") or user.get("name")) if isinstance(user, dict) else None


def _reporter(issue: dict[str, Any]) -> str | None:
    user = (issue.get("fields") or {}).get("reporter")
    return (user.get("accountId") or user.get("name")) if isinstance(user, dict) else None


def expert_queries(issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issues of the later half of the history that ended Fixed with an assignee."""
    later = issues[len(issues) // 2:]
    return [i for i in later if _assignee(i)
            and ((i["fields"].get("resolution") or {}).get("name") or "").lower() == "fixed"]


def _expert_ranks(issues: list[dict[str, Any]], queries: dict[str, dict[str, Any]],
                  reporter_asks: bool, circle: bool) -> dict[str, int | None]:
    ranks: dict[str, int | None] = {}

    def ask(session: Session, tenant_id: int, issue: dict[str, Any]) -> None:
        doc = jira_issue_to_doc(issue, SITE)
        found = suggest_experts(session, tenant_id, doc, limit=EXPERT_DEPTH, now=doc.created,
                                min_confidence=0.0, asker=_reporter(issue) if reporter_asks else None,
                                circle=circle)
        ranks[issue["key"]] = _rank([s.account_id for s in found], {_assignee(queries[issue["key"]])})

    replay(issues, set(queries), ask)
    return ranks


def evaluate_experts(issues: list[dict[str, Any]], reporter_asks: bool = False) -> dict[str, Any]:
    """Replay the history; each query asks, at its creation, who should handle it.

    With `reporter_asks`, the query's reporter is the asker, as in the product: never suggested
    to themselves (so only the `not_reporter` queries can be answered), and their circle counts;
    the result then holds the same replay without the circle too.
    """
    queries = {i["key"]: i for i in expert_queries(issues)}
    ranks = _expert_ranks(issues, queries, reporter_asks, circle=True)
    keys = sorted(queries)
    result = _expert_summary(keys, ranks, queries)
    if reporter_asks:
        result["without_circle"] = _expert_summary(keys, _expert_ranks(issues, queries, True, False), queries)
    result["baseline"] = _expert_summary(keys, _baseline_experts(issues, queries), queries)
    return result


def _expert_summary(keys: list[str], ranks: dict[str, int | None],
                    queries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = summarise([ranks.get(k) for k in keys], EXPERT_KS, "hit")
    others = [k for k in keys if _assignee(queries[k]) != _reporter(queries[k])]
    result["not_reporter"] = summarise([ranks.get(k) for k in others], EXPERT_KS, "hit")
    return result


def _baseline_experts(issues: list[dict[str, Any]], queries: dict[str, dict[str, Any]]) -> dict[str, int | None]:
    tfidf = TfIdf([baseline_text(i) for i in issues])
    ranks: dict[str, int | None] = {}
    for q, issue in enumerate(issues):
        if issue["key"] not in queries:
            continue
        sims = tfidf.similarities(q)[:q]  # issues are in creation order: only earlier ones
        votes: dict[str, float] = defaultdict(float)
        for d in np.argsort(-sims, kind="stable")[:BASELINE_NEIGHBOURS]:
            person = _assignee(issues[d])
            if person and sims[d] > 0:
                votes[person] += float(sims[d])
        ranked = sorted(votes, key=lambda p: (-votes[p], p))
        ranks[issue["key"]] = _rank(ranked, {_assignee(issue)})
    return ranks
