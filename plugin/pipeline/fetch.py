"""Reading current content from the host over REST, normalised into `ItemDoc`s."""

from __future__ import annotations

from typing import Any, Protocol

import requests

from connect.host_client import HostError, segment
from plugin.content.model import ItemDoc
from plugin.content.normalize import confluence_page_to_doc, jira_issue_to_doc

JIRA_FIELDS = (
    "summary,description,comment,status,resolution,resolutiondate,created,updated,"
    "project,labels,components,issuelinks,reporter,creator,assignee,issuetype"
)
# Issues per bulk fetch: Jira's limit when a multi-valued field (the comments) is asked.
BULK_ISSUES = 100
BULK_PATH = "/rest/api/3/issue/bulkfetch"
CONFLUENCE_COLLECTIONS = {"page": "pages", "blogpost": "blogposts"}
MAX_COMMENT_PAGES = 5


class Requester(Protocol):
    """What the pipeline needs of `HostClient`: signed requests to the tenant's site."""

    def request(
        self, method: str, path: str, params: Any = None, json: Any = None
    ) -> requests.Response: ...


def _get_or_none(client: Requester, path: str, params: dict[str, Any] | None = None) -> Any:
    """The JSON at `path`, or None when the host says it does not exist (or is not visible)."""
    try:
        return client.request("GET", path, params=params).json()
    except HostError as exc:
        if exc.status in (403, 404):
            return None
        raise


def jira_issue(client: Requester, key_or_id: str, site_url: str) -> ItemDoc | None:
    """The issue as it is now (with its comments), or None when it no longer exists."""
    issue = _get_or_none(client, f"/rest/api/3/issue/{segment(key_or_id)}", {"fields": JIRA_FIELDS})
    return jira_issue_to_doc(issue, site_url) if issue else None


def jira_issues(client: Requester, refs: list[str], site_url: str) -> dict[str, ItemDoc | None]:
    """Up to BULK_ISSUES issues as they are now, by the id or key each was asked by (None when it
    no longer exists or is hidden), in one call: a site answers each call in 100-300 ms, and its
    rate limits count calls.

    Jira leaves out issues that are gone or hidden, and lists under `issueErrors` those it could
    not return this time: when it listed any, or returned an issue under neither id nor key asked
    (moved to another project since), the issues not returned are read on their own (a
    passing error then fails the batch, which is retried, instead of losing its events). So is
    every issue when the site refuses the bulk call itself.
    """
    try:
        found = client.request("POST", BULK_PATH, json={"issueIdsOrKeys": refs,
                                                         "fields": JIRA_FIELDS.split(",")}).json()
    except HostError as exc:
        if exc.status not in (400, 403, 404):
            raise
        return {ref: jira_issue(client, ref, site_url) for ref in refs}
    found = found if isinstance(found, dict) else {}
    issues = [i for i in found.get("issues") or [] if isinstance(i, dict)]
    named = {str(name): issue for issue in issues for name in (issue.get("id"), issue.get("key")) if name}
    out = {ref: jira_issue_to_doc(named[ref], site_url) if ref in named else None for ref in refs}
    asked = set(refs)
    moved = any(not {str(issue.get("id")), str(issue.get("key"))} & asked for issue in issues)
    if found.get("issueErrors") or moved:
        for ref in refs:
            if ref not in named:
                out[ref] = jira_issue(client, ref, site_url)
    return out


def confluence_kind(client: Requester, content_id: str) -> str | None:
    """Whether a Confluence id is a page or a blog post, as the site says (None: neither is
    visible); a page is asked first."""
    for kind, collection in CONFLUENCE_COLLECTIONS.items():
        if _get_or_none(client, f"/wiki/api/v2/{collection}/{segment(content_id)}") is not None:
            return kind
    return None


def space_key(client: Requester, space_id: str | None, cache: dict[str, str]) -> str | None:
    """The key of a Confluence space id (cached: keys never change for an id)."""
    if not space_id:
        return None
    if space_id not in cache:
        space = _get_or_none(client, f"/wiki/api/v2/spaces/{segment(space_id)}")
        cache[space_id] = str(space.get("key") or space_id) if space else str(space_id)
    return cache[space_id]


def footer_comments(client: Requester, kind: str, content_id: str) -> list[dict[str, Any]]:
    """The footer comments of a page or blog post (storage bodies), a bounded number of pages."""
    path: str | None = f"/wiki/api/v2/{CONFLUENCE_COLLECTIONS[kind]}/{segment(content_id)}/footer-comments"
    params: dict[str, Any] | None = {"body-format": "storage", "limit": 100}
    comments: list[dict[str, Any]] = []
    for _ in range(MAX_COMMENT_PAGES):
        data = _get_or_none(client, path, params) if path else None
        if not data:
            break
        comments.extend(data.get("results") or [])
        path, params = next_path(data), None
    return comments


def next_path(data: dict[str, Any]) -> str | None:
    """The `_links.next` of a cursor page (relative to the site's base URL), or None at the end."""
    return (data.get("_links") or {}).get("next") or None


def confluence_item(
    client: Requester,
    kind: str,
    content_id: str,
    site_url: str,
    spaces: dict[str, str] | None = None,
) -> ItemDoc | None:
    """The page or blog post as it is now, or None when deleted, trashed or not current."""
    params = {"body-format": "storage", "include-labels": "true"}
    content = _get_or_none(
        client, f"/wiki/api/v2/{CONFLUENCE_COLLECTIONS[kind]}/{segment(content_id)}", params
    )
    if not content or content.get("status", "current") != "current":
        return None
    key = space_key(client, content.get("spaceId"), spaces if spaces is not None else {})
    comments = footer_comments(client, kind, content_id)
    return confluence_page_to_doc(content, site_url, kind=kind, space_key=key, comments=comments)
