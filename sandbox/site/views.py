"""Issues, pages and what the app sent, shaped for the demo page to show as the products would."""
from __future__ import annotations

import re
from typing import Any

from plugin.content.markup import adf_to_text, storage_to_text, wiki_to_text
from sandbox.site import data
from sandbox.site.server import FakeHost

_MENTION = re.compile(r"@([\w:-]+)")

MAX_COMMENTS = 30  # the demo shows the latest ones, as Jira's activity tab starts with


def _name(user: dict[str, Any] | None) -> str | None:
    converted = data.user_v3(user)
    return converted["displayName"] if converted else None


def _comment(comment: dict[str, Any], posted: bool) -> dict[str, Any]:
    body = comment.get("body")
    text = adf_to_text(body) if isinstance(body, dict) else wiki_to_text(body)
    return {"author": _name(comment.get("author")), "created": comment.get("created"),
            "text": text, "by_app": posted}


def issue(host: FakeHost, key: str) -> dict[str, Any] | None:
    """The issue's text, people, dates and comments (those the app posted marked as such)."""
    with host.lock:
        source = host.store.issues.get(key)
        posted = list(host.store.posted_comments.get(key, []))
        links = [link for link in host.store.links if key in (link["inward"], link["outward"])]
    if source is None:
        return None
    fields = source["fields"]
    comments = [_comment(c, False) for c in (fields.get("comment") or {}).get("comments", [])]
    comments += [_comment(c, True) for c in posted]
    return {
        "key": key, "id": str(source["id"]), "project": data.project_of(source),
        "summary": fields.get("summary") or "", "description": wiki_to_text(
            fields.get("description")),
        "status": (fields.get("status") or {}).get("name"),
        "resolution": (fields.get("resolution") or {}).get("name"),
        "priority": (fields.get("priority") or {}).get("name"),
        "reporter": _name(fields.get("reporter")), "assignee": _name(fields.get("assignee")),
        "created": fields.get("created"), "updated": host.issue_updated(key),
        "components": [c.get("name") for c in fields.get("components") or []],
        "labels": list(fields.get("labels") or []),
        "comments": comments[-MAX_COMMENTS:], "comment_count": len(comments),
        "links": links,
    }


def page(host: FakeHost, page_id: str) -> dict[str, Any] | None:
    """The page's title, space, creator, last editor and text."""
    with host.lock:
        source = host.store.pages.get(page_id)
        space = host.store.spaces.get(str((source or {}).get("spaceId")))
        users = host.store.users
        creator = users.get((source or {}).get("authorId") or "")
        editor = users.get(((source or {}).get("version") or {}).get("authorId") or "")
        posted = list(host.store.posted_footer_comments.get(page_id, []))
    if source is None:
        return None
    return {
        "id": page_id, "title": source.get("title") or "",
        "space": {"key": space["key"], "name": space.get("name")} if space else None,
        "creator": (creator or {}).get("displayName"),
        "editor": (editor or {}).get("displayName"),
        "updated": (source.get("version") or {}).get("createdAt"),
        "text": storage_to_text(((source.get("body") or {}).get("storage") or {}).get("value")),
        "comments": [{"author": (users.get(c["version"]["authorId"]) or {}).get("displayName"),
                      "created": c["version"]["createdAt"], "by_app": True,
                      "text": storage_to_text(c["body"]["storage"]["value"])} for c in posted],
    }


def _mentions_named(text: str, names: dict[str, Any]) -> str:
    """Storage-format mentions (read as "@<account id>") by the person's name, as Confluence shows them."""
    return _MENTION.sub(lambda m: f"@{names.get(m.group(1)) or m.group(1)}", text)


def activity(host: FakeHost) -> dict[str, Any]:
    """Everything the app wrote to the site: comments, footer comments, links, notifications."""
    with host.lock:
        comments = [{"on": key, **_comment(c, True)}
                    for key, posted in host.store.posted_comments.items() for c in posted]
        names = {a: u.get("displayName") for a, u in host.store.users.items()}
        pages = host.store.pages
        footer = [{"on": page_id, "title": pages.get(page_id, {}).get("title"),
                   "author": names.get(c["version"]["authorId"]),
                   "created": c["version"]["createdAt"], "by_app": True,
                   "text": _mentions_named(storage_to_text(c["body"]["storage"]["value"]), names)}
                  for page_id, posted in host.store.posted_footer_comments.items() for c in posted]
        links = [dict(link) for link in host.store.links]  # copies: "by" is added below
        notifications = [dict(note) for note in host.store.notifications]
    for link in links:
        link["by"] = names.get(link.get("account_id") or "", link.get("account_id"))
    for note in notifications:
        note["by"] = names.get(note.get("account_id") or "", note.get("account_id"))
    every = sorted(comments + footer, key=lambda c: c.get("created") or "", reverse=True)
    return {"comments": every, "links": links[::-1], "notifications": notifications[::-1]}
