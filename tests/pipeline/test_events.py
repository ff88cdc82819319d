"""Webhook events converge: duplicated and reordered deliveries give the in-order final state."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connect.models import Tenant, WebhookEvent
from connect.webhooks import confluence_item_ref, jira_item_ref
from plugin.models.content import Contribution, Item
from plugin.pipeline import events, fetch
from tests.pipeline.conftest import Site, v2_issue

T_A = datetime(2024, 3, 1, tzinfo=UTC)
T_B = datetime(2024, 2, 1, tzinfo=UTC)


def jira_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def add_tenant(site: Site, n: int) -> int:
    """Another tenant on the same fake site (the host accepts the same install secret)."""
    install = site.host.installs[site.auth.product]
    with site.db.session() as session:
        tenant = Tenant(
            client_key=f"{install.client_key}-{n}",
            shared_secret=install.secret,
            base_url=site.host.base_url(site.auth.product),
            display_url=site.host.base_url(site.auth.product),
            product_type=site.auth.product,
        )
        session.add(tenant)
        session.flush()
        return tenant.id


def host_view(site: Site, key: str) -> dict[str, Any]:
    return (
        site.client()
        .request("GET", f"/rest/api/3/issue/{key}", params={"fields": fetch.JIRA_FIELDS})
        .json()
    )


def snapshot(issue: dict[str, Any], summary: str, updated: datetime) -> dict[str, Any]:
    shot = copy.deepcopy(issue)
    shot["fields"]["summary"], shot["fields"]["updated"] = summary, jira_time(updated)
    return shot


def jira_script(site: Site) -> list[tuple[str, dict[str, Any], int]]:
    """Issue A edited and commented, B created then deleted, A linked to C."""
    comment = {
        "id": "5",
        "author": {"accountId": "carol", "displayName": "Carol"},
        "body": "Seen this too",
        "created": jira_time(T_A - timedelta(days=1)),
    }
    site.host.load_jira_issues(
        [
            v2_issue(
                "AMQ-1",
                1001,
                "Broker drops messages",
                jira_time(T_A),
                comment={"comments": [comment], "total": 1},
            ),
            v2_issue("AMQ-2", 1002, "Typo in docs", jira_time(T_B)),
            v2_issue("AMQ-3", 1003, "Broker loses messages on restart", jira_time(T_A)),
        ]
    )
    a, b = host_view(site, "AMQ-1"), host_view(site, "AMQ-2")
    first, second = T_A - timedelta(days=3), T_A - timedelta(days=2)
    return [
        ("jira:issue_created", {"issue": snapshot(a, "Messages vanish", first)}, ms(first)),
        (
            "jira:issue_updated",
            {"issue": snapshot(a, "Messages vanish sometimes", second)},
            ms(second),
        ),
        (
            "comment_created",
            {"comment": comment, "issue": {"id": "1001", "key": "AMQ-1"}},
            ms(T_A - timedelta(days=1)),
        ),
        ("jira:issue_updated", {"issue": a}, ms(T_A)),
        ("jira:issue_created", {"issue": b}, ms(T_B)),
        (
            "jira:issue_deleted",
            {"issue": {"id": "1002", "key": "AMQ-2"}},
            ms(T_B + timedelta(days=1)),
        ),
        (
            "issuelink_created",
            {
                "issueLink": {
                    "id": 9,
                    "sourceIssueId": 1001,
                    "destinationIssueId": 1003,
                    "issueLinkType": {"name": "Relates"},
                }
            },
            ms(T_A + timedelta(hours=1)),
        ),
    ]


def store_events(
    site: Site, tenant_id: int, product: str, script: list[tuple[str, dict[str, Any], int]]
) -> list[int]:
    ids = []
    with site.db.session() as session:
        for n, (event_type, payload, ts) in enumerate(script):
            body = {**payload, "webhookEvent": event_type, "timestamp": ts}
            ref = jira_item_ref(body) if product == "jira" else confluence_item_ref(body)
            row = WebhookEvent(
                tenant_id=tenant_id,
                event_key=f"k{n}",
                event_type=event_type,
                product=product,
                item_ref=ref,
                event_ts=ts,
                payload=body,
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def process_all(site: Site, event_ids: list[int]) -> None:
    client = site.client()
    for event_id in event_ids:
        with site.db.session() as session:
            events.process_event(session, event_id, lambda tenant: client)


def final_state(site: Site, tenant_id: int) -> dict[str, Any]:
    with site.db.session() as session:
        items = session.scalars(select(Item).where(Item.tenant_id == tenant_id)).all()
        state = {}
        for item in items:
            people = session.execute(
                select(Contribution.account_id, Contribution.role, Contribution.at).where(
                    Contribution.item_id == item.id
                )
            ).all()
            state[item.key] = (
                item.title,
                item.text,
                item.comments_text,
                item.status,
                sorted((a, r, at.isoformat()) for a, r, at in people),
            )
        return state


def replay_shuffled(site: Site, product: str, script: list, seed: int) -> dict[str, Any]:
    """The same events, each delivered twice, in a random order, on a fresh tenant."""
    tenant_id = add_tenant(site, seed)
    ids = store_events(site, tenant_id, product, script + script)
    random.Random(seed).shuffle(ids)
    process_all(site, ids)
    return final_state(site, tenant_id)


def in_order(site: Site) -> tuple[list, dict[str, Any]]:
    """The Jira script, and the state its events leave applied one by one in order."""
    script = jira_script(site)
    process_all(site, store_events(site, site.tenant_id, "jira", script))
    return script, final_state(site, site.tenant_id)


def test_jira_events_out_of_order_and_duplicated_converge_to_in_order_state(
    database_url: str, make_site: Any
) -> None:
    site = make_site(database_url)
    script, expected = in_order(site)
    assert set(expected) == {"AMQ-1", "AMQ-3"}  # AMQ-2 was deleted
    assert expected["AMQ-1"][0] == "Broker drops messages"
    assert ("carol", "commenter") in {(a, r) for a, r, _ in expected["AMQ-1"][4]}
    for seed in (1, 2, 3):
        assert replay_shuffled(site, "jira", script, seed) == expected


def confluence_script(site: Site) -> list[tuple[str, dict[str, Any], int]]:
    """A page created, edited, commented, trashed and restored."""
    page = {
        "id": "777",
        "status": "current",
        "title": "Runbook",
        "spaceId": "1",
        "authorId": "erin",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "version": {"number": 3, "authorId": "frank", "createdAt": "2024-03-01T00:00:00.000Z"},
        "body": {"storage": {"representation": "storage", "value": "<p>Restart the broker</p>"}},
    }
    site.host.load_confluence_pages([page])
    site.host.add_footer_comment("777", "dave", "<p>Worked for me</p>", "2024-03-02T00:00:00.000Z")
    ref = {"id": 777, "spaceKey": "TSC", "contentType": "page"}
    base = ms(datetime(2024, 3, 1, tzinfo=UTC))
    return [
        ("page_created", {"page": ref}, base - 3000),
        ("page_updated", {"page": ref}, base),
        (
            "comment_created",
            {"comment": {"id": 5, "creatorAccountId": "dave", "parent": ref}},
            base + 1000,
        ),
        ("page_trashed", {"page": ref}, base + 2000),
        ("page_restored", {"page": ref}, base + 3000),
    ]


def test_confluence_events_out_of_order_and_duplicated_converge_to_in_order_state(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url, "confluence")
    script = confluence_script(site)
    process_all(site, store_events(site, site.tenant_id, "confluence", script))
    expected = final_state(site, site.tenant_id)
    assert set(expected) == {"777"}  # restored after the trash
    assert ("dave", "commenter") in {(a, r) for a, r, _ in expected["777"][4]}
    for seed in (4, 5, 6):
        assert replay_shuffled(site, "confluence", script, seed) == expected


def test_a_processed_event_is_not_applied_again(sqlite_url: str, make_site: Any) -> None:
    site = make_site(sqlite_url)
    ids = store_events(site, site.tenant_id, "jira", jira_script(site)[:1])
    client = site.client()
    with site.db.session() as session:
        assert events.process_event(session, ids[0], lambda tenant: client)
    with site.db.session() as session:
        assert not events.process_event(session, ids[0], lambda tenant: client)


def test_unknown_event_types_are_marked_processed_without_changes(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    ids = store_events(site, site.tenant_id, "jira", [("sprint_started", {"sprint": {"id": 1}}, 5)])
    process_all(site, ids)
    with site.db.session() as session:
        assert session.get(WebhookEvent, ids[0]).processed_at is not None
    assert final_state(site, site.tenant_id) == {}


# Fields of a signed delivery the intake keeps (they are not the objects it checks) in shapes no
# product sends: each once made the worker fail the event on every retry instead of applying it.
ODD_JIRA = [
    ("jira:issue_updated", ("issue", "fields", "updated"), 10**30),
    ("jira:issue_updated", ("issue", "fields", "created"), 10**30),
    ("jira:issue_updated", ("issue", "fields", "resolutiondate"), 10**30),
    ("jira:issue_updated", ("issue", "fields", "issuelinks"), 5),
    ("jira:issue_updated", ("issue", "fields", "comment", "comments", 0, "created"), 10**30),
    ("comment_created", ("comment", "author"), "bob"),
    ("comment_created", ("comment", "author", "accountId"), ["bob"]),
    ("comment_created", ("comment", "author", "accountId"), 10**30),
    ("comment_created", ("comment", "created"), 10**30),
    ("comment_created", ("comment", "created"), "0001-01-01T00:00:00+01:00"),
    ("jira:issue_updated", ("issue", "fields", "reporter", "accountType"), ["app"]),
    ("jira:issue_updated", ("issue", "fields", "comment", "comments", 0, "author", "accountType"), {}),
    ("jira:issue_updated", ("issue", "fields", "description"), {"type": "doc", "content": [{"type": []}]}),
]


def deliver_and_apply(site: Site, url: str, body: dict[str, Any]) -> None:
    """Deliver a signed webhook as the site would, then apply it: it must apply, not fail."""
    response = site.app.test_client().post(url, json=body, headers=site.auth.headers("POST", url))
    assert response.status_code == 202, response.get_json()
    process_all(site, [response.get_json()["event_id"]])
    with site.db.session() as session:
        event = session.get(WebhookEvent, response.get_json()["event_id"])
        assert (event.processed_at is not None, event.error) == (True, None)


@pytest.mark.parametrize("event_type, path, odd", ODD_JIRA)
def test_a_signed_event_with_odd_field_types_is_applied_not_failed(
    sqlite_url: str, make_site: Any, event_type: str, path: tuple[Any, ...], odd: Any
) -> None:
    site = make_site(sqlite_url)
    comment = {"id": "5", "author": {"accountId": "bob"}, "body": "b", "created": jira_time(T_A)}
    issue = v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(T_A),
                     comment={"comments": [copy.deepcopy(comment)], "total": 1})
    site.host.load_jira_issues([copy.deepcopy(issue)])
    body: dict[str, Any] = {"webhookEvent": event_type, "timestamp": ms(T_A), "issue": issue,
                            "comment": comment}
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = odd
    deliver_and_apply(site, f"/webhooks/jira/{event_type.removeprefix('jira:')}", body)
    assert "AMQ-1" in final_state(site, site.tenant_id)


@pytest.mark.parametrize("field, odd", [("creatorAccountId", ["dave"]), ("creatorAccountId", 10**30),
                                        ("creationDate", 10**30),
                                        ("creationDate", "0001-01-01T00:00:00+01:00")])
def test_a_signed_confluence_comment_with_odd_field_types_is_applied_not_failed(
    sqlite_url: str, make_site: Any, field: str, odd: Any
) -> None:
    site = make_site(sqlite_url, "confluence")
    confluence_script(site)  # loads the page
    comment = {"id": 5, "creatorAccountId": "dave", "parent": {"id": 777, "contentType": "page"},
               field: odd}
    deliver_and_apply(site, "/webhooks/confluence/comment_created",
                      {"comment": comment, "timestamp": ms(T_A)})
    assert "777" in final_state(site, site.tenant_id)
