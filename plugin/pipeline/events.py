"""One stored webhook event turned into item changes that converge whatever the delivery order.

Design (why duplicates and reordering give the in-order result):
- A Jira issue event whose payload holds the whole issue (with its comments) is applied as is,
  versioned by the issue's own `updated` time; an older snapshot arriving later is ignored.
- Every other change (comments, links, Confluence events, which carry no body) re-reads the item
  over REST. What comes back is the item *now*, never older than the event, so it is versioned
  max(event time, item `updated`) and any stale snapshot loses against it. Applying the embedded
  comment instead would need per-comment bookkeeping for edits and deletions; re-reading the issue
  makes comment created/updated/deleted one idempotent operation.
- Deletions (issue deleted, page removed or trashed) are tombstones at the event's time: later
  stale updates are ignored, and only a newer version (a restore) brings the item back.
- An item the host no longer returns (404) is left to its own deletion event: a re-read cannot
  tell when it was deleted, so it must not outrank a restore.
- A batch re-reads each item once, however many of its events need a re-read: what comes back is
  newer than every one of them, so each is applied as if it had re-read it. A site answers a
  call in 100-300 ms and its rate limits count calls: a batch's Jira issues are read together,
  up to 100 a call (Jira's bulk fetch), Confluence pages one by one, and the calls run side by
  side (at most REREADS at once): one read after another, or one call per issue, a burst of
  comments was applied far slower than it arrived.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connect.db import utcnow
from connect.host_client import side_by_side
from connect.models import Tenant, WebhookEvent
from connect.webhooks import as_object
from plugin.content.model import ItemDoc
from plugin.content.normalize import jira_issue_to_doc, parse_time
from plugin.pipeline import fetch, versions
from plugin.pipeline.site_url import site_url
from plugin.services import accounts, questions

ClientFactory = Callable[[Tenant], fetch.Requester]

CONFLUENCE_DELETES = ("_removed", "_trashed")
COMMENT_DELETES = ("comment_deleted", "comment_removed")  # Jira's, Confluence's
ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]*-[0-9]+\Z")
# Re-reads one batch runs at once. Bounded because Atlassian's burst limit counts a tenant's calls
# to one endpoint per second; a Retry-After holds all of them (connect.host_client.PACE).
REREADS = 16


@dataclass(frozen=True)
class Target:
    """One item an event changes, and how: apply the embedded issue, re-read, or delete."""

    source: str
    kind: str  # issue | page | blogpost
    ref: str  # issue key or id, page or blog post id
    action: str  # embedded | fetch | delete


def _jira_targets(event_type: str, payload: dict[str, Any]) -> list[Target]:
    issue = payload.get("issue") or {}
    ref = str(issue.get("key") or issue.get("id") or "")
    if event_type in ("jira:issue_created", "jira:issue_updated"):
        full = "comment" in (issue.get("fields") or {})
        return [Target("jira", "issue", ref, "embedded" if full else "fetch")] if ref else []
    if event_type == "jira:issue_deleted":
        return [Target("jira", "issue", ref, "delete")] if ref else []
    if event_type.startswith("comment_"):
        return [Target("jira", "issue", ref, "fetch")] if ref else []
    if event_type.startswith("issuelink_"):
        link = payload.get("issueLink") or {}
        ids = [link.get("sourceIssueId"), link.get("destinationIssueId")]
        return [Target("jira", "issue", str(i), "fetch") for i in ids if i]
    return []


def _content_kind(obj: dict[str, Any], default: str = "page") -> str:
    kind = str(obj.get("contentType") or obj.get("type") or default).lower()
    return "blogpost" if kind in ("blogpost", "blog") else "page" if kind == "page" else kind


def _confluence_targets(event_type: str, payload: dict[str, Any]) -> list[Target]:
    if event_type.startswith(("page_", "blog_")):
        kind = "page" if event_type.startswith("page_") else "blogpost"
        content = payload.get("page") or payload.get("blog") or payload.get("blogpost") or {}
        action = "delete" if event_type.endswith(CONFLUENCE_DELETES) else "fetch"
        return [Target("confluence", kind, str(content["id"]), action)] if content.get("id") else []
    if event_type.startswith("comment_"):
        parent = (payload.get("comment") or {}).get("parent") or {}
        kind = _content_kind(parent)
        ok = parent.get("id") and kind in ("page", "blogpost")
        return [Target("confluence", kind, str(parent["id"]), "fetch")] if ok else []
    if event_type.startswith("label_"):
        labeled = payload.get("labeled") or payload.get("content") or {}
        kind = _content_kind(labeled)
        ok = labeled.get("id") and kind in ("page", "blogpost")
        return [Target("confluence", kind, str(labeled["id"]), "fetch")] if ok else []
    return []


def targets(product: str, event_type: str, payload: dict[str, Any]) -> list[Target]:
    """The items an event changes; unknown event types change nothing."""
    if product == "jira":
        return _jira_targets(event_type, payload)
    return _confluence_targets(event_type, payload)


def event_time_ms(event: WebhookEvent) -> int:
    """The host's time of the event (ms), from the row or its payload."""
    return int(event.event_ts or (event.payload or {}).get("timestamp") or 0)


Read = tuple[str, str, str]  # (source, kind, ref) of an item to re-read


def _read_of(target: Target) -> Read:
    return target.source, target.kind, target.ref


def _change(site: str, read: dict[Read, ItemDoc | None], target: Target, event_ms: int,
            payload: dict[str, Any]) -> versions.Change | None:
    """The versioned change one target asks for (a re-read target's item is in `read`)."""
    if target.action == "delete":
        return versions.Change(target.source, target.ref, event_ms)
    if target.action == "embedded":
        doc = jira_issue_to_doc(payload["issue"], site)
        return versions.Change(doc.source, doc.key, versions.to_ms(doc.updated), doc)
    fetched = read[_read_of(target)]
    if fetched is None:
        return None
    return versions.Change(fetched.source, fetched.key,
                           max(event_ms, versions.to_ms(fetched.updated)), fetched)


def _reread(tenant: Tenant, reads: list[Read], client_for: ClientFactory,
            site: str) -> dict[Read, ItemDoc | None]:
    """Each item as it is now, read once: Jira issues up to `fetch.BULK_ISSUES` a call, pages one
    by one; up to REREADS calls at a time (each with its own client)."""
    issues = [read for read in reads if read[0] == "jira"]
    calls: list[list[Read]] = [issues[n:n + fetch.BULK_ISSUES] for n in range(0, len(issues), fetch.BULK_ISSUES)]
    calls += [[read] for read in reads if read[0] != "jira"]
    if not calls:
        return {}
    spaces: dict[str, str] = {}  # Confluence space keys, shared by the batch's page reads

    def call(client: fetch.Requester, items: list[Read]) -> dict[Read, ItemDoc | None]:
        if items[0][0] == "jira":
            found = fetch.jira_issues(client, [ref for _, _, ref in items], site)
            return {item: found[item[2]] for item in items}
        _, kind, ref = items[0]
        return {items[0]: fetch.confluence_item(client, kind, ref, site, spaces)}

    read: dict[Read, ItemDoc | None] = {}
    for answer in side_by_side(calls, call, client_for(tenant), lambda: client_for(tenant), REREADS, "inflow-reread"):
        read.update(answer)
    return read


def _plan(
    session: Session, tenant: Tenant, rows: list[WebhookEvent], client_for: ClientFactory
) -> list[tuple[WebhookEvent, list[Target], list[versions.Change]]]:
    """Each event with its targets and changes; REST re-reads happen here, before any write."""
    site = site_url(session, tenant, lambda: client_for(tenant))
    found = [(event, targets(event.product, event.event_type, event.payload or {}))
             for event in rows]
    reads = list(dict.fromkeys(_read_of(t) for _, ts in found for t in ts if t.action == "fetch"))
    read = _reread(tenant, reads, client_for, site)
    if tenant.product_type == "confluence":  # its pages name accounts by id alone: apps are asked
        read = _screened(session, tenant, client_for, read)
    planned = []
    for event, ts in found:
        changes = [_change(site, read, t, event_time_ms(event), event.payload or {}) for t in ts]
        planned.append((event, ts, [c for c in changes if c is not None]))
    return planned


def _screened(session: Session, tenant: Tenant, client_for: ClientFactory,
              read: dict[Read, ItemDoc | None]) -> dict[Read, ItemDoc | None]:
    """The re-read pages without the work of apps (`accounts.screened`), by the same reads."""
    found = [(ref, doc) for ref, doc in read.items() if doc is not None]
    if not any(doc.contributions for _, doc in found):
        return read
    docs = accounts.screened(session, tenant.id, client_for(tenant), [doc for _, doc in found])
    return {**read, **{ref: doc for (ref, _), doc in zip(found, docs, strict=True)}}


def _comment_author(product: str, payload: dict[str, Any]) -> tuple[str | None, Any]:
    """Who wrote the event's comment and when; an author that is not an account id is no one."""
    comment = payload.get("comment") or {}
    if product == "jira":
        author = as_object(comment.get("author")).get("accountId")
        at = comment.get("created") or payload.get("timestamp")
    else:
        author = comment.get("creatorAccountId") or payload.get("userAccountId")
        at = comment.get("creationDate") or payload.get("timestamp")
    # The body is what the site signed, in any shape: a list or number is compared with no column.
    return (author if isinstance(author, str) else None), at


def _answer_questions(
    session: Session, tenant_id: int, event: WebhookEvent, found: list[Target]
) -> None:
    """A new comment by the asked expert answers their open question on that item; a deleted
    question's comment withdraws it."""
    if event.event_type in COMMENT_DELETES and found:
        comment_id = as_object((event.payload or {}).get("comment")).get("id")
        if isinstance(comment_id, str | int) and not isinstance(comment_id, bool):
            questions.withdraw(session, tenant_id, found[0].source, _question_key(event, found),
                               str(comment_id))
        return
    if event.event_type != "comment_created" or not found:
        return
    # A Jira comment restricted to a role or group may be hidden from the asker: no answer to
    # them (it is not indexed either); the question stays open and is followed up.
    if as_object((event.payload or {}).get("comment")).get("visibility"):
        return
    author, at = _comment_author(event.product, event.payload or {})
    if not author:
        return
    questions.on_comment(session, tenant_id, found[0].source, _question_key(event, found), author,
                         parse_time(at))


def _moved_issue(event: WebhookEvent) -> tuple[str, str] | None:
    """(old key, new key) when the event is a Jira issue's move to another project."""
    if event.product != "jira" or event.event_type != "jira:issue_updated":
        return None
    items = as_object((event.payload or {}).get("changelog")).get("items")
    for item in items if isinstance(items, list) else []:
        change = as_object(item)
        old, new = change.get("fromString"), change.get("toString")
        if str(change.get("field")).lower() == "key" and _issue_key(old) and _issue_key(new):
            return old, new
    return None


def _issue_key(value: Any) -> TypeGuard[str]:
    """Whether a signed value is an issue key a question can be stored under."""
    return isinstance(value, str) and len(value) <= 255 and ISSUE_KEY.match(value) is not None


def _question_key(event: WebhookEvent, found: list[Target]) -> str:
    """The key questions are stored under: a Jira issue's key, even when the event names its id."""
    if event.product == "jira":
        return str(((event.payload or {}).get("issue") or {}).get("key") or found[0].ref)
    return found[0].ref


def process_events(
    session: Session, tenant_id: int, event_ids: list[int], client_for: ClientFactory,
    changed: list[int] | None = None,
) -> int:
    """Apply many stored events of one tenant in this transaction; returns how many it applied.

    Processed (or unknown) ids are skipped. The outcome is that of applying the events one by
    one in host-time order, but each item is stored once and the whole batch commits once.
    With `changed`, stored suggestions are not refreshed here: the ids of changed items are
    appended for the caller to refresh after the commit (the job queues one coalescing refresh
    per item, so a burst of edits costs one ranking, not one per event).
    """
    rows = list(session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.id.in_(event_ids), WebhookEvent.tenant_id == tenant_id,
               WebhookEvent.processed_at.is_(None))
        .order_by(WebhookEvent.event_ts, WebhookEvent.id)))
    if not rows:
        return 0
    tenant = session.get(Tenant, tenant_id)
    planned = _plan(session, tenant, rows, client_for) if tenant is not None and tenant.installed else []
    taken = _mark_processed(session, [event.id for event in rows])
    planned = [entry for entry in planned if entry[0].id in taken]
    stored = versions.apply_changes(session, tenant_id, [c for _, _, cs in planned for c in cs],
                                    changed)
    for event, found, _ in planned:
        if (move := _moved_issue(event)) is not None:
            questions.moved(session, tenant_id, *move)
        _answer_questions(session, tenant_id, event, found)
    if changed is None:
        for item_id in stored:
            versions.refresh_around(session, tenant_id, item_id)
    else:
        changed.extend(stored)
    return len(taken)


def _mark_processed(session: Session, event_ids: list[int]) -> set[int]:
    """Mark the events processed unless another transaction did; returns those this one took.

    The first write of the batch: on SQLite it takes the write lock before versions are read; on
    PostgreSQL a concurrent transaction's rows are waited for and then re-checked. So an event
    is applied by one committed transaction only, whichever jobs race for it.
    """
    marked = session.scalars(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(event_ids), WebhookEvent.processed_at.is_(None))
        .values(processed_at=utcnow(), error=None)
        .returning(WebhookEvent.id),
        execution_options={"synchronize_session": False},
    )
    return set(marked)


def process_event(session: Session, event_id: int, client_for: ClientFactory,
                  changed: list[int] | None = None) -> bool:
    """Apply one stored event; returns False when it was already processed (or is gone)."""
    event = session.get(WebhookEvent, event_id)
    if event is None or event.processed_at is not None:
        return False
    return process_events(session, event.tenant_id, [event_id], client_for, changed) > 0
