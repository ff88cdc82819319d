"""Webhook intake: verified, stored once, fast, and never 2xx without storage."""
from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connect.db import Database
from connect.models import WebhookEvent
from connect.webhooks import set_event_handler
from tests.conftest import TenantAuth, build_app, chunked, free_port, install_tenant

ISSUE_CREATED = {"webhookEvent": "jira:issue_created", "timestamp": 1700000000123,
                 "issue": {"id": "10001", "key": "KAFKA-7", "fields": {"summary": "Broker stalls"}}}
PAGE_UPDATED = {"timestamp": 1700000000456, "userAccountId": "u-1",
                "page": {"id": 98765, "spaceKey": "TSC", "title": "Charter"}}


def deliver(client: FlaskClient, auth: TenantAuth, path: str, body: Any,
            headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json",
                       headers={**auth.headers("POST", path), **(headers or {})})


def events(db: Database, tenant_id: int | None = None) -> list[WebhookEvent]:
    with db.session() as session:
        query = select(WebhookEvent).order_by(WebhookEvent.id)
        if tenant_id is not None:
            query = query.where(WebhookEvent.tenant_id == tenant_id)
        return list(session.scalars(query))


def test_jira_event_is_stored_with_type_item_ref_and_timestamp(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    response = deliver(client, tenant, "/webhooks/jira/issue_created", ISSUE_CREATED)
    assert response.status_code == 202
    [event] = events(db)
    assert response.get_json()["event_id"] == event.id
    assert (event.tenant_id, event.product, event.event_type) == (
        tenant.tenant_id, "jira", "jira:issue_created")
    assert event.item_ref == "jira:KAFKA-7" and event.event_ts == 1700000000123
    assert event.payload == ISSUE_CREATED and event.processed_at is None


def test_confluence_event_without_webhook_event_uses_the_url_event(
        client: FlaskClient, db: Database, confluence_tenant: TenantAuth) -> None:
    response = deliver(client, confluence_tenant, "/webhooks/confluence/page_updated", PAGE_UPDATED)
    assert response.status_code == 202
    [event] = events(db)
    assert (event.event_type, event.item_ref) == ("page_updated", "confluence:98765")


def test_item_refs_for_comments_links_blogs_and_labels(
        client: FlaskClient, db: Database, tenant: TenantAuth,
        confluence_tenant: TenantAuth) -> None:
    deliveries = [
        (tenant, "/webhooks/jira/issuelink_created",
         {"webhookEvent": "issuelink_created",
          "issueLink": {"id": 5, "sourceIssueId": 10001, "destinationIssueId": 10002}}),
        (tenant, "/webhooks/jira/comment_created",
         {"webhookEvent": "comment_created", "comment": {"id": "1"}, "issue": {"id": "10003"}}),
        (confluence_tenant, "/webhooks/confluence/blog_created", {"blog": {"id": 11}}),
        (confluence_tenant, "/webhooks/confluence/comment_created",
         {"comment": {"id": 3, "parent": {"id": 12, "contentType": "page"}}}),
        (confluence_tenant, "/webhooks/confluence/label_added",
         {"label": {"name": "kafka"}, "labeled": {"id": 13, "contentType": "page"}}),
    ]
    for auth, path, body in deliveries:
        assert deliver(client, auth, path, body).status_code == 202
    assert [e.item_ref for e in events(db)] == [
        "jira:issue:10001", "jira:issue:10003", "confluence:11", "confluence:12", "confluence:13"]


def test_duplicate_delivery_by_identifier_is_stored_once(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    calls: list[tuple[int, int]] = []
    set_event_handler(client.application, lambda t, e: calls.append((t, e)))
    headers = {"X-Atlassian-Webhook-Identifier": "delivery-42"}
    first = deliver(client, tenant, "/webhooks/jira/issue_created", ISSUE_CREATED, headers)
    retry = {**ISSUE_CREATED, "timestamp": ISSUE_CREATED["timestamp"] + 5}
    second = deliver(client, tenant, "/webhooks/jira/issue_created", retry,
                     {**headers, "X-Atlassian-Webhook-Retry": "1"})
    assert first.status_code == 202
    assert second.status_code == 200 and second.get_json() == {"duplicate": True}
    assert len(events(db)) == 1 and len(calls) == 1


def test_duplicate_delivery_without_identifier_is_detected_by_content_hash(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    for _ in range(2):
        deliver(client, tenant, "/webhooks/jira/issue_created", ISSUE_CREATED)
    assert len(events(db)) == 1
    [event] = events(db)
    assert event.event_key.startswith("sha256:")


def test_same_identifier_from_two_tenants_is_two_events(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    other = install_tenant(db, "jira")
    headers = {"X-Atlassian-Webhook-Identifier": "shared-id"}
    deliver(client, tenant, "/webhooks/jira/issue_created", ISSUE_CREATED, headers)
    deliver(client, other, "/webhooks/jira/issue_created", ISSUE_CREATED, headers)
    assert sorted(e.tenant_id for e in events(db)) == sorted([tenant.tenant_id, other.tenant_id])


def test_unknown_event_type_is_stored_and_acknowledged(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    body = {"webhookEvent": "jira:worklog_galaxy_exploded", "timestamp": "not-a-number"}
    response = deliver(client, tenant, "/webhooks/jira/worklog_galaxy_exploded", body)
    assert 200 <= response.status_code < 300
    [event] = events(db)
    assert event.event_type == "jira:worklog_galaxy_exploded" and event.item_ref is None
    assert event.event_ts > 1_600_000_000_000  # receipt time, not the junk timestamp


def test_malformed_json_is_400_and_nothing_stored(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for body in ("{not json", "[1, 2, 3]", b"\xff\xfe", '{"n": NaN}', '{"n": Infinity}', deep):
        response = deliver(client, tenant, "/webhooks/jira/issue_created", body)
        assert response.status_code == 400
        assert response.get_json()["error"] == "bad_request"
    assert events(db) == []


@pytest.mark.parametrize("body", [
    {"webhookEvent": "jira:issue_created", "issue": "str"},
    {"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1", "fields": ["x"]}},
    {"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1", "fields": {"comment": "x"}}},
    {"webhookEvent": "jira:issue_updated",
     "issue": {"key": "A-1", "fields": {"comment": {"comments": "x"}}}},
    {"webhookEvent": "comment_created", "issue": {"key": "A-1"}, "comment": 7},
    {"webhookEvent": "issuelink_created", "issueLink": [1, 2]},
])
def test_a_signed_body_not_shaped_as_jira_sends_it_is_400_and_nothing_stored(
        client: FlaskClient, db: Database, tenant: TenantAuth, body: dict) -> None:
    response = deliver(client, tenant, "/webhooks/jira/issue_created", body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"  # every 400 (docs/reference.md)
    assert response.get_json()["message"].startswith("Not a jira webhook: ")
    assert events(db) == []


def test_a_field_only_the_other_product_shapes_does_not_break_the_check(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    """An 'issue' inside a Confluence delivery is not Confluence's to shape: no 500 over it."""
    from connect.webhooks import malformed

    assert malformed("confluence", {"issue": "str", "page": {"id": "1"}}) is None
    assert malformed("jira", {"issue": {"fields": "str"}}) == "'issue.fields' must be an object"


def test_text_no_database_stores_is_kept_as_well_as_it_can_be(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    """The site's own text (a log pasted with a NUL in it) is its content: stored, not refused."""
    body = ('{"webhookEvent": "jira:issue_updated", "x": 1e400, "issue": {"key": "A-1\\u0000", '
            '"fields": {"description": "log \\u0000 line \\ud800 end \\ud83d\\ude00"}}}')
    assert deliver(client, tenant, "/webhooks/jira/issue_updated", body).status_code == 202
    [event] = events(db)
    assert event.item_ref == "jira:A-1" and event.payload["x"] is None
    assert event.payload["issue"]["fields"]["description"] == "log  line \ufffd end \U0001f600"


def test_body_over_one_mebibyte_is_a_json_413_and_nothing_stored(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    huge = json.dumps({"webhookEvent": "jira:issue_created", "pad": "x" * (1024 * 1024)})
    response = deliver(client, tenant, "/webhooks/jira/issue_created", huge)
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"
    assert events(db) == []


def deliver_chunked(client: FlaskClient, auth: TenantAuth, path: str, body: bytes) -> Any:
    """A delivery without Content-Length, as a server passes a chunked body on."""
    return client.post(path, content_type="application/json", **chunked(body, auth.headers("POST", path)))


@pytest.mark.parametrize("body", [
    json.dumps({"webhookEvent": "jira:issue_created", "pad": "x" * (1024 * 1024)}),
    json.dumps(ISSUE_CREATED) + " " * (1024 * 1024),  # what the limit would cut is valid JSON
])
def test_a_chunked_body_over_one_mebibyte_is_a_413_and_nothing_stored(
        client: FlaskClient, db: Database, tenant: TenantAuth, body: str) -> None:
    """Werkzeug reads a body of no declared length up to the limit and cut it there unsaid."""
    response = deliver_chunked(client, tenant, "/webhooks/jira/issue_created", body.encode())
    assert response.status_code == 413, response.get_json()
    assert response.get_json()["error"] == "request_entity_too_large"
    assert events(db) == []


def test_a_chunked_body_of_exactly_one_mebibyte_is_taken(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    body = json.dumps(ISSUE_CREATED).encode().ljust(1024 * 1024)
    assert deliver_chunked(client, tenant, "/webhooks/jira/issue_created", body).status_code == 202
    assert len(events(db)) == 1


def test_webhook_without_a_valid_jwt_is_401(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    path = "/webhooks/jira/issue_created"
    assert client.post(path, json=ISSUE_CREATED).status_code == 401
    wrong_qsh = tenant.headers("POST", "/webhooks/jira/issue_deleted")
    assert client.post(path, json=ISSUE_CREATED, headers=wrong_qsh).status_code == 401
    context = tenant.context_headers()
    assert client.post(path, json=ISSUE_CREATED, headers=context).status_code == 401
    assert events(db) == []


def test_webhook_for_another_product_is_rejected(
        client: FlaskClient, db: Database, tenant: TenantAuth,
        confluence_tenant: TenantAuth) -> None:
    assert deliver(client, tenant, "/webhooks/confluence/page_updated",
                   PAGE_UPDATED).status_code == 403
    assert deliver(client, confluence_tenant, "/webhooks/jira/issue_created",
                   ISSUE_CREATED).status_code == 403
    assert deliver(client, tenant, "/webhooks/bitbucket/push", {}).status_code == 404
    assert events(db) == []


def test_tenant_a_token_cannot_be_used_as_tenant_b(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    tenant_b = install_tenant(db, "jira")
    path = "/webhooks/jira/issue_created"
    forged = TenantAuth(tenant.tenant_id, tenant_b.client_key, tenant.secret, "", "jira")
    assert deliver(client, forged, path, ISSUE_CREATED).status_code == 401
    assert events(db) == []
    assert deliver(client, tenant, path, ISSUE_CREATED).status_code == 202
    assert events(db, tenant_b.tenant_id) == []
    assert len(events(db, tenant.tenant_id)) == 1


def test_handler_error_is_logged_and_the_event_still_acknowledged(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    def broken(tenant_id: int, event_id: int) -> None:
        raise RuntimeError("redis down")

    set_event_handler(client.application, broken)
    response = deliver(client, tenant, "/webhooks/jira/issue_created", ISSUE_CREATED)
    assert response.status_code == 202
    assert len(events(db)) == 1


def test_handler_receives_tenant_and_committed_event_id(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    seen: list[WebhookEvent | None] = []

    def handler(tenant_id: int, event_id: int) -> None:
        with db.session() as session:  # a separate session: the row must already be committed
            seen.append(session.get(WebhookEvent, event_id))

    set_event_handler(client.application, handler)
    deliver(client, tenant, "/webhooks/jira/issue_created", ISSUE_CREATED)
    assert seen[0] is not None and seen[0].tenant_id == tenant.tenant_id


def test_database_down_is_503_so_the_host_retries(
        app: Flask, client: FlaskClient, tenant: TenantAuth) -> None:
    live = app.extensions["inflow.db"]
    app.extensions["inflow.db"] = Database(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    try:
        response = deliver(client, tenant, "/webhooks/jira/issue_created", ISSUE_CREATED)
    finally:
        app.extensions["inflow.db"].dispose()
        app.extensions["inflow.db"] = live
    assert response.status_code == 503
    assert response.headers["Retry-After"] and response.get_json()["error"] == "unavailable"


def test_storage_failure_after_authentication_is_never_2xx(sqlite_url: str) -> None:
    app = build_app(sqlite_url)
    db = app.extensions["inflow.db"]
    auth = install_tenant(db, "jira")
    WebhookEvent.__table__.drop(db.engine)
    response = deliver(app.test_client(), auth, "/webhooks/jira/issue_created", ISSUE_CREATED)
    assert response.status_code == 503
    db.dispose()


def test_events_are_stored_once_on_each_backend(database_url: str) -> None:
    app = build_app(database_url)
    db = app.extensions["inflow.db"]
    auth = install_tenant(db, "confluence")
    client = app.test_client()
    headers = {"X-Atlassian-Webhook-Identifier": "abc-1"}
    codes = [deliver(client, auth, "/webhooks/confluence/page_updated", PAGE_UPDATED,
                     headers).status_code for _ in range(3)]
    assert codes == [202, 200, 200]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 1
    db.dispose()


def test_concurrent_duplicate_deliveries_store_one_row_on_each_backend(database_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    app = build_app(database_url)
    db = app.extensions["inflow.db"]
    auth = install_tenant(db, "jira")
    headers = {"X-Atlassian-Webhook-Identifier": "raced-1"}

    def one(_: int) -> int:
        return deliver(app.test_client(), auth, "/webhooks/jira/issue_updated", ISSUE_CREATED,
                       headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = sorted(pool.map(one, range(8)))
    assert codes == [200] * 7 + [202]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 1
    db.dispose()


def test_text_no_database_stores_is_kept_however_deep_the_body_nests(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    """A NUL 500 lists deep (json reads it; ADF nests as deep) made the cleaning recurse: a 500."""
    depth = 500
    body = ('{"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1", "fields": '
            '{"description": ' + "[" * depth + '"log \\u0000 end"' + "]" * depth + "}}}")
    response = deliver(client, tenant, "/webhooks/jira/issue_updated", body)
    assert response.status_code == 202, response.status_code
    [event] = events(db)
    value = event.payload["issue"]["fields"]["description"]
    for _ in range(depth):
        [value] = value
    assert value == "log  end"


def test_cleaning_takes_any_depth_and_leaves_what_it_was_given() -> None:
    from connect.strings import cleaned

    deep: Any = ["a\x00b", {"k\x00": 1e400}]
    for _ in range(10_000):
        deep = [deep]
    value = cleaned(deep)
    for _ in range(10_000):
        [value] = value
    assert value == ["ab", {"k": None}]
    given = {"x": ["\ud800", 1, True, None]}
    assert cleaned(given) == {"x": ["\ufffd", 1, True, None]}
    assert given == {"x": ["\ud800", 1, True, None]}


def test_a_body_nested_past_the_limit_is_a_400_wherever_json_still_reads_it(
        client: FlaskClient, db: Database, tenant: TenantAuth) -> None:
    """Just under json's own limit a body was read, then could not be stored: a 500."""
    from connect.headers import MAX_NESTING

    stored = 0
    for depth in range(MAX_NESTING - 6, 1000, 3):  # the lists sit 3 objects deep
        body = ('{"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1", "fields": {"x": '
                + "[" * depth + "1" + "]" * depth + "}}}")
        response = deliver(client, tenant, "/webhooks/jira/issue_updated", body,
                           headers={"X-Atlassian-Webhook-Identifier": f"deep-{depth}"})
        expected = 202 if depth + 3 <= MAX_NESTING else 400
        assert response.status_code == expected, (depth, response.status_code)
        assert response.get_json()["error" if expected == 400 else "stored"]
        stored += expected == 202
    assert len(events(db)) == stored == 2  # 506 and 509 lists deep
    deepest = deliver(client, tenant, "/webhooks/jira/issue_updated", '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert deepest.status_code == 400
    assert deepest.get_json()["message"] == f"Request body nests deeper than {MAX_NESTING} levels"
