"""The burst: `jira:issue_updated` deliveries built from real ActiveMQ issues in sandbox/data.

Each issue is edited SNAPSHOTS times: snapshot k carries the whole issue (as Jira sends it), with
`updated` k minutes later, the first comments up to a share k/SNAPSHOTS of its real comments, and
a label naming the revision, so every delivery has a visible, checkable effect. Deliveries go out
shuffled (Jira does not promise order) under distinct webhook identifiers.
"""
from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandbox import datasets

DATASET = "apache-activemq"
JIRA_TIME = "%Y-%m-%dT%H:%M:%S.%f%z"


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery: its identifier, issue key, snapshot version and body."""

    identifier: str
    key: str
    updated: datetime
    body: dict[str, Any]


def _issues(count: int, skip: int = 0) -> list[dict[str, Any]]:
    issues = datasets.read_jira_issues(DATASET)
    with_comments = [i for i in issues if (i["fields"].get("comment") or {}).get("comments")]
    return with_comments[skip:skip + count]


def _jira_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" + \
        moment.strftime("%z")


def snapshot(issue: dict[str, Any], k: int, snapshots: int) -> tuple[dict[str, Any], datetime]:
    """Revision k (1-based) of an issue, and its `updated` time."""
    edited = copy.deepcopy(issue)
    fields = edited["fields"]
    updated = datetime.strptime(fields["updated"], JIRA_TIME) + timedelta(minutes=k)
    comments = fields["comment"]["comments"]
    keep = math.ceil(len(comments) * k / snapshots)
    fields["comment"] = {**fields["comment"], "comments": comments[:keep], "total": keep}
    fields["labels"] = [*fields.get("labels", []), f"soak-rev-{k:03d}"]
    fields["updated"] = _jira_time(updated)
    return edited, updated


def build(issues: int, snapshots: int, run: str, seed: int | None = 7, skip: int = 0,
          embed: bool = True) -> list[Delivery]:
    """issues × snapshots deliveries, shuffled (unless `seed` is None: then in time order), with
    identifiers unique to this run; `skip` issues are passed over (another site sends them).

    Without `embed`, the issue's comments are left out, as Jira does for some edits: Inflow then
    re-reads the issue from the site (`final_issues` is what the site holds by then).
    """
    deliveries = []
    for issue in _issues(issues, skip):
        for k in range(1, snapshots + 1):
            body, updated = snapshot(issue, k, snapshots)
            if not embed:
                body["fields"].pop("comment")
            payload = {"timestamp": int(updated.timestamp() * 1000),
                       "webhookEvent": "jira:issue_updated", "issue_event_type_name": "issue_updated",
                       "user": {"accountId": "soak-editor", "displayName": "Soak editor"},
                       "issue": body}
            deliveries.append(Delivery(f"{run}-{issue['key']}-{k}", issue["key"], updated,
                                       payload))
    if seed is None:
        return sorted(deliveries, key=lambda d: d.updated)
    random.Random(seed).shuffle(deliveries)
    return deliveries


def final_issues(issues: int, snapshots: int, skip: int = 0) -> list[dict[str, Any]]:
    """Each issue as its last revision left it: what its site answers once the burst is over."""
    return [snapshot(issue, snapshots, snapshots)[0] for issue in _issues(issues, skip)]
