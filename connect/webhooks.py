"""Webhook intake: verify, store the raw event once, answer fast, hand the id to the product."""
from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
from collections.abc import Callable
from typing import Any, cast

from flask import Blueprint, Flask, abort, current_app, g, jsonify, request
from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from connect.auth import get_db, verify_current_request
from connect.headers import database_unavailable, read_json_object
from connect.jwt import JWTRejected
from connect.models import WebhookEvent
from connect.strings import storable

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)

EventHandler = Callable[[int, int], None]
HANDLER_KEY = "inflow.event_handler"
PRODUCTS = ("jira", "confluence")
EVENT_SLUG = re.compile(r"^[a-z0-9_:.-]{1,100}\Z")
IDENTIFIER_HEADER = "X-Atlassian-Webhook-Identifier"
# Jira names issue events `jira:issue_*`; the URL slug drops the prefix (colons in paths confuse).
JIRA_PREFIXED = frozenset({"issue_created", "issue_updated", "issue_deleted"})


def set_event_handler(app: Flask, fn: EventHandler | None) -> None:
    """Register `fn(tenant_id, event_id)`, called after each new event row commits."""
    app.extensions[HANDLER_KEY] = fn


def event_key(product: str, slug: str, raw_body: bytes) -> str:
    """The host's delivery id when sent (stable across retries), else a content hash."""
    identifier = request.headers.get(IDENTIFIER_HEADER, "").strip()
    if identifier and len(identifier) <= 200 and storable(identifier):
        return f"id:{identifier}"
    digest = hashlib.sha256(f"{product}/{slug}\n".encode() + raw_body).hexdigest()
    return f"sha256:{digest}"


def event_type(product: str, slug: str, body: dict[str, Any]) -> str:
    """The host's event name: the body's `webhookEvent`, else the one the URL was declared for."""
    name = body.get("webhookEvent")
    if isinstance(name, str) and name and len(name) <= 128:
        return name
    if product == "jira" and slug in JIRA_PREFIXED:
        return f"jira:{slug}"
    return slug


def _ident(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)[:200]
    return None


def jira_item_ref(body: dict[str, Any]) -> str | None:
    """`jira:<KEY>` for issue and comment events, `jira:issue:<id>` when only the id is known."""
    issue = value if isinstance(value := body.get("issue"), dict) else {}
    if key := _ident(issue.get("key")):
        return f"jira:{key}"
    if issue_id := _ident(issue.get("id")):
        return f"jira:issue:{issue_id}"
    link = value if isinstance(value := body.get("issueLink"), dict) else {}
    if source_id := _ident(link.get("sourceIssueId")):
        return f"jira:issue:{source_id}"
    return None


def confluence_item_ref(body: dict[str, Any]) -> str | None:
    """`confluence:<id>` of the page or blog post the event is about."""
    for field in ("page", "blog"):
        content = body.get(field)
        if isinstance(content, dict) and (content_id := _ident(content.get("id"))):
            return f"confluence:{content_id}"
    for field, inner in (("comment", "parent"), ("labeled", None), ("content", None)):
        content = body.get(field)
        if isinstance(content, dict) and inner:
            content = content.get(inner)
        if isinstance(content, dict) and (content_id := _ident(content.get("id"))):
            return f"confluence:{content_id}"
    return None


def sane_ms(value: Any) -> int | None:
    """`value` as epoch milliseconds when it is a number a time column can hold, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 2**53:
        return int(value)
    return None


def event_timestamp(body: dict[str, Any]) -> int:
    """The host's `timestamp` (ms) when it is a sane number, else the receipt time."""
    found = sane_ms(body.get("timestamp"))
    return int(time.time() * 1000) if found is None else found


# The parts of a delivery that Jira and Confluence always send as JSON objects, and what lies
# inside them: a signed body that breaks this is refused, not stored for the worker to trip on.
OBJECTS = {"jira": ("issue", "comment", "issueLink", "changelog", "user"),
           "confluence": ("page", "blog", "blogpost", "comment", "content", "labeled", "label",
                          "attachment", "space", "user")}
INNER = (("issue", "fields"), ("comment", "parent"))


def as_object(value: Any) -> dict[str, Any]:
    """A JSON object as it is, anything else (absent, another product's field of another shape) as {}."""
    return value if isinstance(value, dict) else {}


def malformed(product: str, body: dict[str, Any]) -> str | None:
    """What is not shaped as the host sends it (a field that must be an object), else None."""
    for name in OBJECTS[product]:
        if name in body and body[name] is not None and not isinstance(body[name], dict):
            return f"'{name}' must be an object"
    for outer, inner in INNER:
        value = as_object(body.get(outer)).get(inner)
        if value is not None and not isinstance(value, dict):
            return f"'{outer}.{inner}' must be an object"
    comment = as_object(as_object(body.get("issue")).get("fields")).get("comment")
    if comment is not None and not (isinstance(comment, dict)
                                    and isinstance(comment.get("comments", []), list)):
        return "'issue.fields.comment' must be an object with a list of comments"
    return None


def _verified_tenant(product: str) -> Any:
    verified = verify_current_request(allow_context_qsh=False)
    if verified.tenant.product_type != product:
        raise JWTRejected(f"This tenant does not send {product} webhooks", status=403)
    g.tenant = verified.tenant
    return verified.tenant


def store_event(tenant_id: int, product: str, slug: str, raw: bytes,
                body: dict[str, Any]) -> int | None:
    """Insert the event row; None when this delivery was already stored."""
    key = event_key(product, slug, raw)
    ref = jira_item_ref(body) if product == "jira" else confluence_item_ref(body)
    return insert_event(WebhookEvent(
        tenant_id=tenant_id, event_key=key, event_type=event_type(product, slug, body),
        product=product, item_ref=ref, event_ts=event_timestamp(body), payload=body))


# What a delivery sets of its row; the rest (received_at, attempts) takes the columns' defaults.
_DELIVERED = ("tenant_id", "event_key", "event_type", "product", "item_ref", "event_ts", "payload")
_EVENTS = cast(Table, WebhookEvent.__table__)


@functools.cache
def _insert(dialect: str) -> Insert:
    """The one statement that stores a delivery, built and compiled once per database kind."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(_EVENTS).on_conflict_do_nothing(index_elements=["tenant_id", "event_key"])
            .returning(_EVENTS.c.id))


def insert_event(row: WebhookEvent) -> int | None:
    """Insert a prepared event row (any host); None when its key was already stored.

    One statement that skips a stored key (a concurrent delivery of the same event included),
    built once with the values bound at execution: a look-up and an ORM insert, or an ORM
    statement built around each delivery's values, cost most of a webhook's CPU, and a burst's
    POSTs share the cores with the worker that applies them.
    """
    # What the row leaves unset takes its column's default, as the ORM's insert did.
    values = {name: value for name in _DELIVERED if (value := getattr(row, name)) is not None}
    try:
        with get_db().session() as session:
            connection = session.connection()
            stored = connection.execute(_insert(connection.dialect.name), values).scalar()
    except IntegrityError:
        return None  # its tenant went meanwhile (uninstalled and removed): nothing to store it for
    return int(stored) if stored is not None else None


def hand_over(tenant_id: int, event_id: int) -> None:
    """Give a committed event to the product's handler; failures leave it to the relay."""
    handler = current_app.extensions.get(HANDLER_KEY)
    if handler is None:
        return
    try:
        handler(tenant_id, event_id)
    except Exception:  # the stored row is the truth: the outbox relay enqueues it later
        log.exception("event handler failed for event %s of tenant %s", event_id, tenant_id)


@bp.post("/webhooks/<product>/<slug>")
def receive(product: str, slug: str) -> Any:
    """Store one webhook delivery; duplicates are acknowledged and not stored again."""
    if product not in PRODUCTS or not EVENT_SLUG.match(slug):
        abort(404)
    tenant = _verified_tenant(product)
    body = read_json_object(clean=True)  # the site's text, NUL and all: kept, not refused
    problem = malformed(product, body)
    if problem:  # a 400 like any body that cannot be read (docs/reference.md), as Forge's events
        abort(400, description=f"Not a {product} webhook: {problem}.")
    raw = request.get_data(cache=True)
    event_id = store_event(tenant.id, product, slug, raw, body)
    if event_id is None:
        return jsonify({"duplicate": True}), 200
    hand_over(tenant.id, event_id)
    return jsonify({"stored": True, "event_id": event_id}), 202


for _error in (OperationalError, InterfaceError, PoolTimeoutError):
    bp.register_error_handler(_error, database_unavailable)


def init_app(app: Flask) -> None:
    """Register the webhook route."""
    app.extensions.setdefault(HANDLER_KEY, None)
    app.register_blueprint(bp)
