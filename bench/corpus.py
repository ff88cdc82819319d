"""Realistic items at any size, made by resampling the real texts in sandbox/data.

Each generated Jira issue takes its summary, description, comments, components and people from
different real issues (and sometimes splices two summaries), so 100,000 items have the length,
vocabulary and people distribution of real trackers without being 100,000 copies of 9,000.
Items are Jira issues: the benchmark tenant is a Jira site, whose permission checks only know issues.
Everything is seeded, so a run can regenerate the same item by index.
"""
from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox import datasets

JIRA_SETS = datasets.JIRA_SETS
PROJECTS = ("AMQ", "ZOOKEEPER", "HADOOP", "KAFKA", "SPARK", "CORE", "OPS", "WEB")
SITE = "https://bench.atlassian.net"
EPOCH = datetime(2012, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Pools:
    """The real material items are resampled from."""

    summaries: list[str]
    descriptions: list[str]
    comments: list[tuple[dict[str, str], str]]
    people: list[dict[str, str]]
    components: list[str]
    labels: list[str]
    statuses: list[tuple[str, str | None]]


@functools.lru_cache(maxsize=1)
def pools() -> Pools:
    """Read the real sets once per process (parsed afresh and dropped: only the pools stay)."""
    summaries, descriptions, comments, people, components, labels, statuses = [], [], [], [], [], [], []
    seen_people: set[str] = set()
    for name in JIRA_SETS:
        for issue in datasets.read_jira_issues(name):
            fields = issue["fields"]
            summaries.append(fields.get("summary") or "")
            if fields.get("description"):
                descriptions.append(fields["description"])
            for comment in (fields.get("comment") or {}).get("comments", []):
                if comment.get("author") and comment.get("body"):
                    comments.append((comment["author"], comment["body"]))
            for role in ("reporter", "assignee", "creator"):
                person = fields.get(role)
                if person and person["accountId"] not in seen_people:
                    seen_people.add(person["accountId"])
                    people.append(person)
            components += [c["name"] for c in fields.get("components") or []]
            labels += fields.get("labels") or []
            status = (fields.get("status") or {}).get("name", "Open")
            resolution = (fields.get("resolution") or {}).get("name")
            statuses.append((status, resolution))
    return Pools(summaries, descriptions, comments, people, components or ["core"], labels or ["bug"],
                 statuses)


def _when(rng: random.Random) -> datetime:
    return EPOCH + timedelta(seconds=rng.randrange(0, 12 * 365 * 86400))


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _summary(rng: random.Random, p: Pools) -> str:
    first = rng.choice(p.summaries)
    if rng.random() < 0.5:
        return first
    # Splice the start of one real summary onto the end of another.
    a, b = first.split(), rng.choice(p.summaries).split()
    return " ".join(a[: max(1, len(a) // 2)] + b[len(b) // 2:])


def jira_issue(index: int, seed: int = 1, project: str | None = None) -> dict[str, Any]:
    """The index-th generated issue, shaped as Jira REST v2 returns it."""
    rng = random.Random(f"{seed}:{index}")
    p = pools()
    project = project or PROJECTS[index % len(PROJECTS)]
    created = _when(rng)
    updated = created + timedelta(hours=rng.randrange(1, 24 * 90))
    status, resolution = rng.choice(p.statuses)
    reporter, assignee = rng.choice(p.people), rng.choice(p.people)
    comments = []
    for n in range(rng.choice((0, 0, 1, 1, 2, 3, 4, 6))):
        author, body = rng.choice(p.comments)
        comments.append({"id": f"{index}{n}", "author": author, "body": body,
                         "created": _stamp(created + timedelta(hours=n + 1))})
    fields = {
        "project": {"key": project, "name": project.title()},
        "issuetype": {"name": rng.choice(("Bug", "Bug", "Improvement", "Task"))},
        "summary": _summary(rng, p),
        "description": rng.choice(p.descriptions) if rng.random() < 0.9 else None,
        "status": {"name": status},
        "resolution": {"name": resolution} if resolution else None,
        "created": _stamp(created), "updated": _stamp(updated),
        "resolutiondate": _stamp(updated) if resolution else None,
        "components": [{"name": rng.choice(p.components)} for _ in range(rng.choice((0, 1, 1, 2)))],
        "labels": [rng.choice(p.labels) for _ in range(rng.choice((0, 0, 1)))],
        "reporter": reporter, "creator": reporter,
        "assignee": assignee if rng.random() < 0.8 else None,
        "comment": {"comments": comments, "total": len(comments), "maxResults": len(comments),
                    "startAt": 0},
    }
    return {"id": str(100000 + index), "key": f"{project}-{index + 1}", "fields": fields}


def item_doc(index: int, seed: int = 1, project: str | None = None) -> Any:
    """The index-th item as an ItemDoc, through the product's own normaliser."""
    from plugin.content.normalize import jira_issue_to_doc

    return jira_issue_to_doc(jira_issue(index, seed, project), SITE)


def item_docs(count: int, seed: int = 1, start: int = 0, project: str | None = None) -> Iterator[Any]:
    """`count` ItemDocs from index `start` on."""
    for index in range(start, start + count):
        yield item_doc(index, seed, project)


def query_text(index: int, seed: int = 99) -> str:
    """A fresh question as a user would type it: a real summary and the start of a description."""
    rng = random.Random(f"q:{seed}:{index}")
    p = pools()
    return f"{_summary(rng, p)}\n{rng.choice(p.descriptions)[:600]}"
