"""Jira issues and Confluence pages (REST or webhook JSON) normalised into `ItemDoc`s."""
from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any, NamedTuple

from plugin.content.markup import (  # noqa: F401  (re-exported: the contract names them here)
    MAX_TEXT,
    adf_to_text,
    body_to_text,
    clip,
    storage_to_text,
    wiki_to_text,
)
from plugin.content.model import ContributionDoc, ItemDoc

MAX_COMMENTS = 500  # comments kept per item; the newest win
MAX_COMMENT_TEXT = 10_000


def parse_time(value: Any, default: datetime | None = None) -> datetime:
    """A timezone-aware datetime from Jira/Confluence timestamps (ISO 8601, `+0000`, ms epoch).

    A time no column stores (past year 9999 or before year 1 in UTC) is unreadable: `default`.
    """
    try:
        parsed = _parsed_time(value)
        if parsed is not None:
            parsed.astimezone(UTC)  # raises for 0001-01-01T00:00+01:00, which no database takes
            return parsed
    except (ValueError, OverflowError, OSError):  # a signed webhook's 1e30 "created", say
        pass
    return default or datetime.fromtimestamp(0, tz=UTC)


def _parsed_time(value: Any) -> datetime | None:
    """`value` read as an aware datetime, None when it is no time at all; raises when out of range."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str) and value:
        text = value.strip().replace("Z", "+00:00")
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = text[:-2] + ":" + text[-2:]  # +0000 -> +00:00
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


class _User(NamedTuple):
    account: str
    name: str | None
    active: bool | None  # the host's `active` when the object carries it


# Accounts that are not people to ask or thank: apps (Automation for Jira, integrations), which
# comment on and resolve issues by the thousand, and service-desk portal customers.
NOT_PEOPLE = frozenset({"app", "customer"})


def _user(value: Any) -> _User | None:
    """Account id, display name and `active` of a Jira/Confluence user object; Server's `name` as
    fallback. None for an app or portal customer: their work is kept, never credited to them."""
    if not isinstance(value, dict):
        return None
    kind = value.get("accountType")
    if isinstance(kind, str) and kind in NOT_PEOPLE:  # a signed body's list or object: unhashable
        return None
    account = value.get("accountId") or value.get("name") or value.get("key")
    if not account:
        return None
    active = value.get("active")
    return _User(str(account)[:255], str(value["displayName"])[:255] if value.get("displayName") else None,
                 active if isinstance(active, bool) else None)


def _contribution(user: _User, role: str, at: datetime) -> ContributionDoc:
    return ContributionDoc(user.account, role, at, user.name, user.active)


def _name(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("value") or "")[:255] or None
    return str(value)[:255] if value else None


def _names(values: Any) -> list[str]:
    if not isinstance(values, list):
        return []
    return [n for n in (_name(v) for v in values[:100]) if n]


def _issue_links(fields: dict[str, Any]) -> list[str]:
    keys: list[str] = []
    links = fields.get("issuelinks")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict):
            for side in ("inwardIssue", "outwardIssue"):
                other = link.get(side)
                if isinstance(other, dict) and other.get("key"):
                    keys.append(str(other["key"]))
    return keys


def _jira_comments(fields: dict[str, Any]) -> tuple[list[str], list[ContributionDoc]]:
    container = fields.get("comment")
    comments = container.get("comments") if isinstance(container, dict) else container
    texts: list[str] = []
    people: list[ContributionDoc] = []
    for comment in (comments if isinstance(comments, list) else [])[-MAX_COMMENTS:]:
        # A comment restricted to a role or group is hidden from others who may browse the issue,
        # and Inflow checks the issue only: quoted in a snippet or credited, it would show them.
        if not isinstance(comment, dict) or comment.get("visibility"):
            continue
        texts.append(clip(body_to_text(comment.get("body")), MAX_COMMENT_TEXT))
        author = _user(comment.get("author"))
        if author:
            people.append(_contribution(author, "commenter", parse_time(comment.get("created"))))
    return texts, people


def _jira_people(fields: dict[str, Any], created: datetime, updated: datetime) -> list[ContributionDoc]:
    people: list[ContributionDoc] = []
    reporter = _user(fields.get("reporter")) or _user(fields.get("creator"))
    if reporter:
        people.append(_contribution(reporter, "reporter", created))
    assignee = _user(fields.get("assignee"))
    if assignee:
        resolved_at = fields.get("resolutiondate")
        at = parse_time(resolved_at, updated) if resolved_at else updated
        people.append(_contribution(assignee, "assignee", at))
        if fields.get("resolution") and resolved_at:
            # Jira has no resolver field; the assignee at resolution time is who resolved it.
            people.append(_contribution(assignee, "resolver", at))
    return people


def jira_issue_to_doc(issue: dict[str, Any], site_url: str) -> ItemDoc:
    """An issue from REST v2 (wiki markup), REST v3 or a webhook (ADF) as an `ItemDoc`."""
    fields = issue.get("fields") or {}
    key = str(issue.get("key") or issue.get("id") or "")[:255]
    created = parse_time(fields.get("created"))
    updated = parse_time(fields.get("updated"), created)
    comments, commenters = _jira_comments(fields)
    project = fields.get("project")
    return ItemDoc(
        source="jira", key=key, kind="issue",
        title=clip(str(fields.get("summary") or ""), 1000),
        text=body_to_text(fields.get("description")),
        project=(_name(project.get("key")) if isinstance(project, dict) else None)
        or (key.rsplit("-", 1)[0] if "-" in key else None),
        space=None, labels=_names(fields.get("labels")), components=_names(fields.get("components")),
        status=_name(fields.get("status")), resolution=_name(fields.get("resolution")),
        created=created, updated=max(updated, created),
        url=f"{site_url.rstrip('/')}/browse/{key}" if site_url else None,
        links=_issue_links(fields),
        contributions=_jira_people(fields, created, updated) + commenters,
        external_id=str(issue["id"]) if issue.get("id") else None,
        comments=comments,
    )


def _storage_value(obj: dict[str, Any]) -> str:
    body = obj.get("body")
    if isinstance(body, dict):
        storage = body.get("storage")
        if isinstance(storage, dict):
            return storage_to_text(storage.get("value"))
        if isinstance(body.get("value"), str):
            return storage_to_text(body["value"])
    return ""


def _page_comments(comments: list[dict[str, Any]] | None) -> tuple[list[str], list[ContributionDoc]]:
    texts: list[str] = []
    people: list[ContributionDoc] = []
    for comment in (comments or [])[-MAX_COMMENTS:]:
        texts.append(clip(_storage_value(comment), MAX_COMMENT_TEXT))
        version = value if isinstance(value := comment.get("version"), dict) else {}
        author = comment.get("authorId") or version.get("authorId")
        if author:
            at = parse_time(version.get("createdAt") or comment.get("createdAt"))
            people.append(ContributionDoc(str(author), "commenter", at))
    return texts, people


def confluence_page_to_doc(page: dict[str, Any], site_url: str, kind: str = "page",
                           space_key: str | None = None,
                           comments: list[dict[str, Any]] | None = None) -> ItemDoc:
    """A page or blog post from Confluence REST v2 (storage body) as an `ItemDoc`."""
    version = value if isinstance(value := page.get("version"), dict) else {}
    updated = parse_time(version.get("createdAt") or page.get("createdAt"))
    created = parse_time(page.get("createdAt"), updated)
    people: list[ContributionDoc] = []
    if page.get("authorId"):
        people.append(ContributionDoc(str(page["authorId"]), "creator", created))
    if version.get("authorId"):
        people.append(ContributionDoc(str(version["authorId"]), "editor", updated))
    texts, commenters = _page_comments(comments)
    links = value if isinstance(value := page.get("_links"), dict) else {}
    webui = links.get("webui")
    base = site_url.rstrip("/")
    labels = page.get("labels")
    label_list = labels.get("results") if isinstance(labels, dict) else labels
    return ItemDoc(
        source="confluence", key=str(page.get("id") or "")[:255], kind=kind,
        # Titles can arrive entity-escaped (export, REST v1 views): store them as plain text.
        title=clip(html.unescape(str(page.get("title") or "")), 1000), text=_storage_value(page),
        project=None, space=space_key or (str(page["spaceId"]) if page.get("spaceId") else None),
        labels=_names(label_list), components=[], status=_name(page.get("status")), resolution=None,
        created=min(created, updated), updated=updated,
        url=(f"{base}/wiki{webui}" if not base.endswith("/wiki") else f"{base}{webui}") if webui else None,
        links=[], contributions=people + commenters, external_id=str(page.get("id") or "") or None,
        comments=texts,
    )
