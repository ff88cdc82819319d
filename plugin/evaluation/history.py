"""Jira history as a time-ordered stream of states: each issue as it looked at each moment."""
from __future__ import annotations

import copy
import json
import lzma
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from plugin.content.normalize import parse_time


def load_issues(paths: list[str]) -> list[dict[str, Any]]:
    """Issues from Jira REST JSON files: search responses (`{"issues": [...]}`) or plain lists.

    A file ending in `.xz` is read compressed, as the sandbox's sets are shipped.
    """
    issues: list[dict[str, Any]] = []
    for path in paths:
        raw = Path(path).read_bytes()
        data = json.loads(lzma.decompress(raw) if path.endswith(".xz") else raw)
        batch = data.get("issues", []) if isinstance(data, dict) else data
        issues.extend(issue for issue in batch if isinstance(issue, dict) and issue.get("key"))
    unique = {issue["key"]: issue for issue in issues}
    return sorted(unique.values(), key=lambda i: (created_at(i), i["key"]))


def created_at(issue: dict[str, Any]) -> datetime:
    """When an issue was created."""
    return parse_time((issue.get("fields") or {}).get("created"))


@dataclass(order=True)
class Event:
    """Something that happened to an issue: created (0), commented (1) or resolved (2)."""

    at: datetime
    kind: int
    key: str
    index: int = 0


LATER_FIELDS = ("comment", "resolution", "resolutiondate", "assignee")


def at_creation(issue: dict[str, Any]) -> dict[str, Any]:
    """The issue as it was when created: no comments, resolution or assignee yet."""
    fields = {k: v for k, v in (issue.get("fields") or {}).items() if k not in LATER_FIELDS}
    fields["status"] = {"name": "Open"}
    fields["updated"] = fields.get("created")
    fields["comment"] = {"comments": []}
    return {**{k: v for k, v in issue.items() if k != "fields"}, "fields": fields}


def events(issues: list[dict[str, Any]]) -> list[Event]:
    """Every creation, comment and resolution, in time order (creation first on ties)."""
    out: list[Event] = []
    for issue in issues:
        fields = issue.get("fields") or {}
        out.append(Event(created_at(issue), 0, issue["key"]))
        comments = (fields.get("comment") or {}).get("comments") or []
        for i, comment in enumerate(comments):
            out.append(Event(parse_time(comment.get("created")), 1, issue["key"], i))
        if fields.get("resolutiondate"):
            out.append(Event(parse_time(fields["resolutiondate"]), 2, issue["key"]))
    return sorted(out)


def apply(state: dict[str, Any], original: dict[str, Any], event: Event) -> None:
    """Advance an issue's state by one comment or its resolution."""
    fields, final = state["fields"], original.get("fields") or {}
    if event.kind == 1:
        comment = copy.copy(final["comment"]["comments"][event.index])
        fields["comment"]["comments"].append(comment)
        fields["updated"] = comment.get("created") or fields["updated"]
    elif event.kind == 2:
        for name in ("resolution", "resolutiondate", "assignee", "status"):
            fields[name] = final.get(name)
        fields["updated"] = final.get("resolutiondate")
