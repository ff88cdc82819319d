"""The normalised shape every Jira issue and Confluence page takes before it is stored."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ROLES = ("assignee", "resolver", "reporter", "commenter", "creator", "editor", "answerer", "kudos")


@dataclass
class ContributionDoc:
    """Someone's part in an item: who, in which role, when."""

    account_id: str
    role: str
    at: datetime
    display_name: str | None = None
    active: bool | None = None  # the host's `active` for the account, when the payload said


@dataclass
class ItemDoc:
    """One issue, page or blog post as plain text plus the facts ranking needs."""

    source: str  # jira | confluence
    key: str  # issue key or page id
    kind: str  # issue | page | blogpost
    title: str
    text: str
    project: str | None
    space: str | None
    labels: list[str]
    components: list[str]
    status: str | None
    resolution: str | None
    created: datetime
    updated: datetime
    url: str | None
    links: list[str] = field(default_factory=list)
    contributions: list[ContributionDoc] = field(default_factory=list)
    external_id: str | None = None
    # Comment bodies as plain text, kept apart from `text` so ranking can weigh them separately.
    comments: list[str] = field(default_factory=list)
