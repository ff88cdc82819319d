"""Forge product events as their Connect webhook equivalents: the pipeline needs no Forge knowledge.

A Forge event (`avi:jira:updated:issue` with an `issue` object) becomes the webhook Jira would
have sent a Connect app (`jira:issue_updated` with `issue`, `user`, `changelog`, `timestamp`).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connect.webhooks import as_object, confluence_item_ref, jira_item_ref, sane_ms

# Forge event type -> (Connect webhook event, product)
JIRA_EVENTS = {
    "avi:jira:created:issue": "jira:issue_created",
    "avi:jira:updated:issue": "jira:issue_updated",
    "avi:jira:deleted:issue": "jira:issue_deleted",
    # Jira sends one event for a comment added or edited (its times tell which); Forge has no
    # `created:comment` or `updated:comment` for Jira, a trigger naming them is never called.
    "avi:jira:commented:issue": "comment_created",
    "avi:jira:deleted:comment": "comment_deleted",
    # A link changes both issues' links (what the reuse panel says of a suggestion already linked).
    "avi:jira:created:issuelink": "issuelink_created",
    "avi:jira:deleted:issuelink": "issuelink_deleted",
}
CONFLUENCE_EVENTS = {
    "avi:confluence:created:page": "page_created",
    "avi:confluence:updated:page": "page_updated",
    "avi:confluence:trashed:page": "page_trashed",
    "avi:confluence:restored:page": "page_restored",
    "avi:confluence:deleted:page": "page_removed",
    "avi:confluence:created:blogpost": "blog_created",
    "avi:confluence:updated:blogpost": "blog_updated",
    "avi:confluence:trashed:blogpost": "blog_trashed",
    "avi:confluence:restored:blogpost": "blog_restored",
    "avi:confluence:deleted:blogpost": "blog_removed",
    "avi:confluence:created:comment": "comment_created",
    "avi:confluence:updated:comment": "comment_updated",
    "avi:confluence:deleted:comment": "comment_removed",
    "avi:confluence:added:label": "label_added",
    "avi:confluence:removed:label": "label_removed",
}
LIFECYCLE_EVENTS = ("avi:forge:installed:app", "avi:forge:upgraded:app")


class UnsupportedEvent(ValueError):
    """An event body we cannot map (unknown type or missing its object): a 4xx, not a 5xx."""


@dataclass(frozen=True)
class ConnectEvent:
    """A Forge event translated: what a Connect webhook of the same change would have been."""

    event_type: str
    product: str
    item_ref: str | None
    event_ts: int
    payload: dict[str, Any]
    event_key: str


RETRY_FIELD = "retryContext"


def delivered(body: dict[str, Any]) -> dict[str, Any]:
    """The event itself: unwrapped from `payload` if Forge wrapped it, without `retryContext`.

    A redelivery (up to 4, a minute apart) carries the same event plus a `retryContext` that
    counts the attempts; without it, every retry looks like the first delivery.
    """
    inner = body.get("payload")
    if "eventType" not in body and isinstance(inner, dict):
        body = inner
    return {k: v for k, v in body.items() if k != RETRY_FIELD}


def lifecycle_type(body: dict[str, Any]) -> Any:
    """A lifecycle event's type: its `eventType`, else the one its payload describes.

    Atlassian documents both payloads without `eventType`: an install names its
    `installerAccountId`, an upgrade its `upgraderAccountId`. Only our lifecycle trigger's calls
    reach the route, so a body that names no type is still one of the two.
    """
    event = delivered(body)
    if "eventType" in event:
        return event["eventType"]
    return "avi:forge:upgraded:app" if "upgraderAccountId" in event else "avi:forge:installed:app"


def retry_count(body: dict[str, Any]) -> int:
    """Which redelivery this is (0 for the first delivery)."""
    for holder in (body, body.get("payload")):
        context = holder.get(RETRY_FIELD) if isinstance(holder, dict) else None
        if isinstance(context, dict) and isinstance(context.get("retryCount"), int):
            return context["retryCount"]
    return 0


def event_key(body: dict[str, Any]) -> str:
    """A stable key for an event body: Forge retries deliver the same event, so they dedupe."""
    canonical = json.dumps(delivered(body), sort_keys=True, separators=(",", ":"), default=str)
    return "forge:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:48]


def _timestamp_ms(*candidates: Any) -> int:
    """The first usable time among ISO strings / epoch ms, else now."""
    for value in candidates:
        if (found := sane_ms(value)) is not None:
            return found
        if isinstance(value, str) and value:
            try:
                return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
            except ValueError:
                continue
    return int(time.time() * 1000)


def map_event(body: dict[str, Any]) -> ConnectEvent:
    """The Connect equivalent of a Forge product event body; raises UnsupportedEvent."""
    body = delivered(body)
    forge_type = body.get("eventType")
    if not isinstance(forge_type, str):
        raise UnsupportedEvent("Forge event without an event type")
    if forge_type in JIRA_EVENTS:
        return _jira_event(body, JIRA_EVENTS[forge_type])
    if forge_type in CONFLUENCE_EVENTS:
        return _confluence_event(body, CONFLUENCE_EVENTS[forge_type])
    raise UnsupportedEvent(f"Unsupported Forge event type: {forge_type!r}")


def _jira_event(body: dict[str, Any], connect_type: str) -> ConnectEvent:
    if connect_type.startswith("issuelink_"):
        return _link_event(body, connect_type)
    issue = as_object(body.get("issue"))
    if not issue.get("key") and not issue.get("id"):
        raise UnsupportedEvent("Jira event without an issue")
    fields = as_object(issue.get("fields"))
    comment = as_object(body.get("comment"))
    if connect_type == "comment_created" and _edited(comment):
        connect_type = "comment_updated"
    ts = _timestamp_ms(body.get("timestamp"), comment.get("updated"), fields.get("updated"),
                       fields.get("created"))
    payload: dict[str, Any] = {"timestamp": ts, "webhookEvent": connect_type, "issue": issue}
    if body.get("atlassianId"):
        payload["user"] = {"accountId": body["atlassianId"]}
    if connect_type.startswith("jira:"):
        payload["issue_event_type_name"] = connect_type.split(":", 1)[1]
        if body.get("changelog"):
            payload["changelog"] = body["changelog"]
    else:
        if not comment:
            raise UnsupportedEvent("Comment event without a comment")
        payload["comment"] = comment
    return ConnectEvent(connect_type, "jira", jira_item_ref(payload), ts, payload, event_key(body))


def _link_event(body: dict[str, Any], connect_type: str) -> ConnectEvent:
    """An issue link event: Forge sends the link's fields where Connect nests them in `issueLink`."""
    link = {k: body[k] for k in ("id", "sourceIssueId", "destinationIssueId", "issueLinkType") if k in body}
    if not link.get("sourceIssueId") and not link.get("destinationIssueId"):
        raise UnsupportedEvent("Issue link event without its issues")
    ts = _timestamp_ms(body.get("timestamp"))  # Jira dates no link event: received now
    payload = {"timestamp": ts, "webhookEvent": connect_type, "issueLink": link}
    return ConnectEvent(connect_type, "jira", jira_item_ref(payload), ts, payload, event_key(body))


def _edited(comment: dict[str, Any]) -> bool:
    """Whether a Jira comment was edited since it was added (Jira writes both times alike)."""
    created, updated = comment.get("created"), comment.get("updated")
    return bool(created and updated and created != updated)


def _page_shape(content: dict[str, Any]) -> dict[str, Any]:
    """Confluence REST content as the flat object Connect webhooks carry."""
    history = as_object(content.get("history"))
    version = as_object(content.get("version"))
    created = history.get("createdDate")
    modified = version.get("when") or created
    page = {
        "id": content.get("id"),
        "title": content.get("title"),
        "contentType": content.get("type"),
        "spaceKey": as_object(content.get("space")).get("key"),
        "creatorAccountId": as_object(history.get("createdBy")).get("accountId"),
        "lastModifierAccountId": as_object(version.get("by")).get("accountId"),
        "creationDate": _timestamp_ms(created) if created else None,
        "modificationDate": _timestamp_ms(modified) if modified else None,
        "version": version.get("number"),
        "self": as_object(content.get("_links")).get("self"),
    }
    return {k: v for k, v in page.items() if v is not None}


def _comment_parent(content: dict[str, Any]) -> dict[str, Any] | None:
    """The page or blog post a Confluence comment is on."""
    container = as_object(content.get("container"))
    if container.get("id"):
        return _page_shape(container)
    listed = content.get("ancestors")
    ancestors = [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) else []
    return _page_shape(ancestors[-1]) if ancestors else None


def _confluence_event(body: dict[str, Any], connect_type: str) -> ConnectEvent:
    content = as_object(body.get("content"))
    labeled = connect_type.startswith("label_")
    if not content.get("id") and not (labeled and as_object(body.get("label"))):
        raise UnsupportedEvent("Confluence event without content")
    shaped = _page_shape(content)
    # When it happened, as Confluence documents it: a trash or a restore leaves the page's
    # version time as it was, older than a comment added since, so it would lose to that comment.
    ts = _timestamp_ms(body.get("timestamp"), body.get("eventCreatedDate"), shaped.get("modificationDate"))
    # Confluence webhooks carry no `webhookEvent`: the event name is the one subscribed to.
    payload: dict[str, Any] = {"timestamp": ts}
    if body.get("atlassianId"):
        payload["userAccountId"] = body["atlassianId"]
    if labeled:  # on a page or blog post; a space's or a template's label changes no item
        payload["label"] = as_object(body.get("label"))
        if shaped:
            payload["labeled"] = shaped
    elif connect_type.startswith("comment_"):
        parent = _comment_parent(content)
        if parent:
            shaped["parent"] = parent
        payload["comment"] = shaped
    else:
        payload["blog" if connect_type.startswith("blog_") else "page"] = shaped
    return ConnectEvent(connect_type, "confluence", confluence_item_ref(payload), ts, payload,
                        event_key(body))
