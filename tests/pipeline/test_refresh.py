"""Stored suggestions are refreshed after events: items wait in a due set, one job per tenant."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import delete, select

from bench.common import wait_until
from connect.models import WebhookEvent
from jobs import pipeline as jobs
from jobs.core import (
    DUE_INDEX,
    QUEUE_BACKLOG,
    QUEUE_DEFAULT,
    QUEUE_REFRESH,
    due_keys,
    get_queue,
    mark_due,
    redis_connection,
    settle,
    take_due,
    wait_for_due,
)
from plugin.matching import precompute
from plugin.models.content import Item, StoredSuggestion
from plugin.pipeline import relay
from tests.pipeline.conftest import v2_issue
from tests.pipeline.test_events import T_A, host_view, jira_time, snapshot
from tests.pipeline.test_relay import post_webhook, run_worker
from tests.runtime.helpers import worker_process


def two_issue_site(site: Any) -> Any:
    """The site with two near-duplicate issues on the host (not yet sent to Inflow)."""
    site.host.load_jira_issues([
        v2_issue("AMQ-1", 3001, "Broker drops persistent messages on restart", jira_time(T_A)),
        v2_issue("AMQ-2", 3002, "Persistent messages lost when the broker restarts", jira_time(T_A)),
    ])
    return site


def test_a_burst_of_edits_to_one_item_queues_one_refresh_and_fresh_suggestions_follow(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = two_issue_site(make_site(sqlite_url, redis_url=redis_url))
    other = host_view(site, "AMQ-2")
    assert post_webhook(site, 100, snapshot(other, "Persistent messages lost when the broker restarts", T_A)) < 300
    issue = host_view(site, "AMQ-1")
    for n in range(1, 6):
        assert post_webhook(site, n, snapshot(issue, f"Broker drops persistent messages {n}", T_A)) < 300
    with site.db.session() as session:
        event_ids = session.scalars(select(WebhookEvent.id).order_by(WebhookEvent.id)).all()
    connection = redis_connection(redis_url)
    for event_id in event_ids:  # process the events without running the refreshes
        jobs.process_event(event_id)
    with site.db.session() as session:
        item_id = session.scalar(select(Item.id).where(Item.key == "AMQ-1"))
    stale = connection.zrange(jobs.refresh_key(site.tenant_id), 0, -1)
    assert sorted(int(m) for m in stale) == sorted({item_id, other_id(site)})
    refresh_ids = [k.decode().removeprefix("rq:job:") for k in connection.keys("rq:job:refresh-*")]
    assert refresh_ids == [f"refresh-{site.tenant_id}"]  # one for the tenant, however many events
    job = Job.fetch(refresh_ids[0], connection=connection, serializer=JSONSerializer)
    assert job.args == [site.tenant_id]
    run_worker(redis_url)
    with site.db.session() as session:
        stored = precompute.stored_suggestions(session, site.tenant_id, item_id)
    assert stored is not None
    assert [s.key for s in stored["reuse"]][:1] == ["AMQ-2"]
    assert connection.zcard(jobs.refresh_key(site.tenant_id)) == 0


def two_stored_issues(site: Any, redis_url: str) -> Any:
    """The two-issue site with both issues learned through webhooks, each the other's neighbour."""
    two_issue_site(site)
    for n, key in enumerate(("AMQ-1", "AMQ-2"), start=1):
        issue = host_view(site, key)
        assert post_webhook(site, n, snapshot(issue, issue["fields"]["summary"], T_A)) < 300
    run_worker(redis_url)
    return site


def other_id(site: Any) -> int:
    with site.db.session() as session:
        return session.scalar(select(Item.id).where(Item.key == "AMQ-2"))


def test_the_due_set_leases_members_and_keeps_those_changed_while_taken(redis_url: str) -> None:
    connection = redis_connection(redis_url)
    key = "inflow:refresh:test"
    mark_due(connection, key, [1, 2, 3])
    lease, first = take_due(connection, key, 2, lease_s=60)
    assert len(first) == 2
    _, second = take_due(connection, key, 5, lease_s=60)
    assert len(second) == 1 and not set(first) & set(second)  # concurrent takers share nothing
    mark_due(connection, key, [first[0]])  # it changed while being refreshed
    settle(connection, key, lease, first)
    assert connection.zrange(key, 0, -1) == [first[0].encode(), second[0].encode()]
    _, again = take_due(connection, key, 5, lease_s=0)  # a taker that died: due again at once
    assert again == [first[0]]
    assert due_keys(connection, "inflow:refresh:t") == [key]
    assert connection.sismember(DUE_INDEX, key)  # leased members may be left by a dead taker
    emptied = "inflow:refresh:test-emptied"
    mark_due(connection, emptied, [7])
    lease, taken = take_due(connection, emptied, 5, lease_s=60)
    settle(connection, emptied, lease, taken)
    assert due_keys(connection, "inflow:refresh:test-") == []
    assert not connection.sismember(DUE_INDEX, emptied)  # an emptied set leaves the index


def test_a_member_changed_again_while_due_keeps_its_place(redis_url: str) -> None:
    connection = redis_connection(redis_url)
    key = "inflow:refresh:test-place"
    for member in (1, 2, 1):  # 1 is commented on again before its refresh
        mark_due(connection, key, [member], ahead=True)
        time.sleep(0.005)  # due times are in milliseconds
    _, taken = take_due(connection, key, 1, lease_s=60)
    assert taken == ["1"]  # first marked, first refreshed: not sent behind every later change
    time.sleep(0.005)
    mark_due(connection, key, [1], ahead=True)  # changed while being refreshed: due again, behind 2
    _, again = take_due(connection, key, 5, lease_s=60)
    assert again == ["2", "1"]


def test_a_hold_before_a_commit_keeps_a_due_members_place_and_a_taken_one_due_again(
    redis_url: str
) -> None:
    from jobs.core import hold_due

    connection = redis_connection(redis_url)
    key = "inflow:refresh:test-hold"
    for member in (1, 2):
        mark_due(connection, key, [member], ahead=True)
        time.sleep(0.005)  # due times are in milliseconds
    lease, [taken] = take_due(connection, key, 1, lease_s=60)
    hold_due(connection, key, [1, 2, 3], 60)  # 1 is being refreshed, 2 waits, 3 is new
    settle(connection, key, lease, [taken])
    mark_due(connection, key, [2, 1, 3], ahead=True)  # after the commit
    _, due = take_due(connection, key, 5, lease_s=60)
    assert due == ["2", "1", "3"]  # 2 kept its place; 1 was not settled, though taken before


def test_an_idle_taker_looks_as_soon_as_members_are_marked_due(redis_url: str) -> None:
    # A refresher that only looked every so often added half its interval to every refresh.
    connection = redis_connection(redis_url)
    waited: list[float] = []

    def idle() -> None:
        started = time.monotonic()
        wait_for_due(Redis.from_url(redis_url), 60)  # no socket timeout below the wait's
        waited.append(time.monotonic() - started)

    taker = threading.Thread(target=idle)
    taker.start()
    time.sleep(0.2)
    mark_due(connection, "inflow:refresh:test-notice", [1], ahead=True)
    taker.join(20)
    assert waited and waited[0] < 20  # the notice, not the 60 s timeout, ended the wait
    wait_for_due(connection, 0.05)  # no notice left over: a short wait just ends
    assert connection.llen("inflow:due-notice") == 0


def post_deletion(site: Any, n: int, issue_id: str, key: str) -> int:
    path = "/webhooks/jira/issue_deleted"
    at = int(T_A.timestamp() * 1000) + 60_000  # after the issue's last update: the deletion wins
    body = {"webhookEvent": "jira:issue_deleted", "timestamp": at, "issue": {"id": issue_id, "key": key}}
    headers = {**site.auth.headers("POST", path), "X-Atlassian-Webhook-Identifier": f"delivery-{n}"}
    return site.app.test_client().post(path, json=body, headers=headers).status_code


def test_a_deletion_refreshes_its_neighbours_after_the_batch_commits(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = two_stored_issues(make_site(sqlite_url, redis_url=redis_url), redis_url)
    kept = other_id(site)
    with site.db.session() as session:
        assert [s.key for s in precompute.stored_suggestions(session, site.tenant_id, kept)["reuse"]] == ["AMQ-1"]
    assert post_deletion(site, 3, "3001", "AMQ-1") < 300
    with site.db.session() as session:
        event_id = session.scalar(select(WebhookEvent.id).order_by(WebhookEvent.id.desc()))
    jobs.process_event(event_id)  # the deletion alone, refreshes not run yet
    connection = redis_connection(redis_url)
    assert [int(m) for m in connection.zrange(jobs.refresh_key(site.tenant_id), 0, -1)] == [kept]
    with site.db.session() as session:  # not refreshed inside the deletion's transaction
        assert [s.key for s in precompute.stored_suggestions(session, site.tenant_id, kept)["reuse"]] == ["AMQ-1"]
    run_worker(redis_url)
    with site.db.session() as session:
        assert precompute.stored_suggestions(session, site.tenant_id, kept)["reuse"] == []


def test_changed_items_are_refreshed_before_any_neighbour(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site, first, second, connection, key = learned_pair(make_site(sqlite_url, redis_url=redis_url), redis_url)
    mark_due(connection, key, [first])
    lease, taken = take_due(connection, key, 1, lease_s=60)
    assert jobs._refresh_member(connection, key, site.tenant_id, taken[0])
    settle(connection, key, lease, taken)
    # The changed item's neighbour waits as a neighbour, behind any change.
    assert [m.decode() for m in connection.zrange(key, 0, -1)] == [f"{jobs.NEIGHBOUR}{second}"]
    mark_due(connection, key, [second], ahead=True)  # a later change still goes first
    assert [m.decode() for m in connection.zrange(key, 0, -1)] == [str(second), f"{jobs.NEIGHBOUR}{second}"]
    # The later change, the neighbour, then that change's neighbour; a neighbour's refresh marks
    # no neighbours of its own, so it ends.
    assert jobs.refresh_suggestions(site.tenant_id) == 3
    assert connection.zcard(key) == 0


def test_a_change_marked_while_neighbours_are_refreshed_goes_before_the_rest_of_them(
    sqlite_url: str, make_site: Any, redis_url: str, monkeypatch: Any
) -> None:
    site, first, second, connection, key = learned_pair(make_site(sqlite_url, redis_url=redis_url), redis_url)
    mark_due(connection, key, [f"{jobs.NEIGHBOUR}{first}", f"{jobs.NEIGHBOUR}{second}"])
    order: list[str] = []
    refresh_member = jobs._refresh_member

    def recording(connection: Any, key: str, tenant_id: int, member: str) -> bool:
        order.append(member)
        if len(order) == 1:  # the item changes while the chunk's first neighbour is refreshed
            mark_due(connection, key, [second], ahead=True)
        return refresh_member(connection, key, tenant_id, member)

    monkeypatch.setattr(jobs, "_refresh_member", recording)
    assert jobs.refresh_due(connection, site.tenant_id) == (4, False)
    # The change, then its own neighbour (marked behind the waiting one), then that one.
    assert order == [f"{jobs.NEIGHBOUR}{first}", str(second), f"{jobs.NEIGHBOUR}{second}",
                     f"{jobs.NEIGHBOUR}{first}"]
    assert connection.zcard(key) == 0


def learned_pair(site: Any, redis_url: str) -> tuple[Any, int, int, Redis, str]:
    """The two issues learned, their ids, Redis and the site's due set."""
    site = two_stored_issues(site, redis_url)
    first, second = (item_id(site, key) for key in ("AMQ-1", "AMQ-2"))
    return site, first, second, redis_connection(redis_url), jobs.refresh_key(site.tenant_id)


def item_id(site: Any, key: str) -> int:
    with site.db.session() as session:
        return session.scalar(select(Item.id).where(Item.key == key))


def refreshing(site: Any, redis_url: str) -> tuple[Any, str, list[int]]:
    """A connection, the site's due set and the ids of its two stored issues."""
    return (redis_connection(redis_url), jobs.refresh_key(site.tenant_id),
            [item_id(site, k) for k in ("AMQ-1", "AMQ-2")])


def writer_elsewhere(site: Any, changed: list[int]) -> Any:
    """The shard's lock, held as another process writing it would (it is not writing), with
    the site's stored suggestions gone and a change to each `changed` item not indexed yet."""
    from plugin.config import Settings
    from plugin.matching.store import set_feedback_counts
    from plugin.search.indexer import ShardLock, local_shards

    settings = Settings.from_env()
    lock = ShardLock(settings.index_dir, local_shards(settings)[0].name)
    assert lock.acquire()
    with site.db.session() as session:
        session.execute(delete(StoredSuggestion))
        for item in changed:
            set_feedback_counts(session, site.tenant_id, item, 1, 0)
    return lock


def test_a_refresh_ranks_each_item_once_its_own_change_is_indexed(
    sqlite_url: str, make_site: Any, redis_url: str, index_dir: Path, monkeypatch: Any
) -> None:
    # Item by item: the first is ranked while the second's change still waits for the indexer,
    # which writes it meanwhile, instead of the refresher idling until both are indexed.
    from plugin import search

    site = two_stored_issues(make_site(sqlite_url, redis_url=redis_url), redis_url)
    connection, key, (first, second) = refreshing(site, redis_url)
    lock = writer_elsewhere(site, [second])
    monkeypatch.setattr(search, "FRESH_WAIT", 60.0)
    mark_due(connection, key, [first, second], ahead=True)
    done: list[tuple[int, bool]] = []
    refresher = threading.Thread(target=lambda: done.append(jobs.refresh_due(connection, site.tenant_id)))
    refresher.start()

    def stored(item: int) -> bool:
        with site.db.session() as session:
            return precompute.stored_suggestions(session, site.tenant_id, item) is not None

    try:
        assert wait_until(lambda: stored(first), 20, interval=0.05)
        assert not stored(second)  # waiting for its change to be indexed
    finally:
        lock.release()
        assert search.catch_up(site.db)  # the writer's step: the waiting refresh goes on
        refresher.join(30)
    assert done and done[0][0] >= 2 and stored(second)


def test_a_stalled_writer_costs_a_refresh_one_wait_not_one_per_item(
    sqlite_url: str, make_site: Any, redis_url: str, index_dir: Path, monkeypatch: Any
) -> None:
    # A writer that does not write (a full disk, a long step): the first item waits its time out,
    # the rest are ranked on what the index holds, not kept waiting as long again each.
    from plugin import search

    site = two_stored_issues(make_site(sqlite_url, redis_url=redis_url), redis_url)
    connection, key, (first, second) = refreshing(site, redis_url)
    lock = writer_elsewhere(site, [first, second])  # and it never gets to them
    monkeypatch.setattr(search, "FRESH_WAIT", 0.5)
    waits: list[float] = []
    real = search.catch_up

    def catch_up(*args: Any, **kwargs: Any) -> bool:
        waits.append(kwargs["timeout"])
        return real(*args, **kwargs)

    monkeypatch.setattr(search, "catch_up", catch_up)
    mark_due(connection, key, [first, second], ahead=True)
    try:
        count, _ = jobs.refresh_due(connection, site.tenant_id)
    finally:
        lock.release()
    assert count >= 2 and waits[0] == 0.5 and set(waits[1:]) == {0.0}  # neighbours too, once ranked
    with site.db.session() as session:
        assert all(precompute.stored_suggestions(session, site.tenant_id, item) is not None
                   for item in (first, second))


def test_a_refresh_gives_way_to_waiting_events_only_after_its_slice(
    sqlite_url: str, make_site: Any, redis_url: str, monkeypatch: Any
) -> None:
    site = two_stored_issues(make_site(sqlite_url, redis_url=redis_url), redis_url)
    connection, key, items = refreshing(site, redis_url)
    get_queue(connection, QUEUE_DEFAULT).enqueue("builtins.print", "an event waits")
    monkeypatch.setattr(jobs, "REFRESH_SLICE_S", 0.0)
    mark_due(connection, key, items, ahead=True)
    refresh_queue = get_queue(connection, QUEUE_REFRESH)
    # A worker's refresher: one item, then it gives way; the rest stay due, and no job is
    # queued (the refresher comes back to the due sets itself).
    assert jobs.refresh_due(connection, site.tenant_id) == (1, True)
    assert connection.zcard(key) == 2 and not refresh_queue.get_job_ids()
    # The job gives way alike, and queues its own continuation behind the events.
    assert jobs.refresh_suggestions(site.tenant_id) == 1
    assert refresh_queue.get_job_ids() == [f"refresh-{site.tenant_id}"]
    monkeypatch.setattr(jobs, "REFRESH_SLICE_S", 60.0)
    # Within its slice it goes on although the event still waits: both neighbours.
    assert jobs.refresh_suggestions(site.tenant_id) == 2


def test_a_refresh_gives_way_to_its_sites_drain_waiting_on_the_backlog_and_continues_behind_it(
    sqlite_url: str, make_site: Any, redis_url: str, monkeypatch: Any
) -> None:
    site = two_stored_issues(make_site(sqlite_url, redis_url=redis_url), redis_url)
    connection, key, items = refreshing(site, redis_url)
    monkeypatch.setattr(jobs, "REFRESH_SLICE_S", 0.0)
    # Another site's long drain waits on the backlog: not this refresh's business.
    jobs.enqueue_drain(connection, site.tenant_id + 1, queue=QUEUE_BACKLOG)
    mark_due(connection, key, items, ahead=True)
    assert jobs.refresh_suggestions(site.tenant_id) == 4  # both items and their neighbours
    # This site's own drain continues on the backlog (its events outlasted a slice): the refresh
    # gives way after one item, and its continuation waits behind that drain, not ahead of it.
    jobs.enqueue_drain(connection, site.tenant_id, queue=QUEUE_BACKLOG)
    mark_due(connection, key, items, ahead=True)
    assert jobs.refresh_suggestions(site.tenant_id) == 1
    backlog = get_queue(connection, QUEUE_BACKLOG).get_job_ids()
    drain = relay.drain_job_id(site.tenant_id)
    assert backlog.index(drain) < backlog.index(f"refresh-{site.tenant_id}")
    assert not get_queue(connection, QUEUE_REFRESH).get_job_ids()


def test_a_workers_refresher_refreshes_while_its_job_thread_waits(
    sqlite_url: str, make_site: Any, redis_url: str, index_dir: Path
) -> None:
    site = two_stored_issues(make_site(sqlite_url, redis_url=redis_url), redis_url)
    connection, key, items = refreshing(site, redis_url)
    with site.db.session() as session:
        session.execute(delete(StoredSuggestion))
    with worker_process(sqlite_url, redis_url):
        busy = get_queue(connection, QUEUE_DEFAULT).enqueue("time.sleep", 30)  # a drain waiting on its site
        assert wait_until(lambda: busy.get_status(refresh=True) == "started", 30, interval=0.1)
        mark_due(connection, key, items, ahead=True)  # no refresh job: the job thread is taken anyway

        def stored() -> bool:
            with site.db.session() as session:
                return all(precompute.stored_suggestions(session, site.tenant_id, i) for i in items)

        assert wait_until(stored, 20, interval=0.1), "nothing refreshed the due items while the job ran"
        assert busy.get_status(refresh=True) == "started"


def test_a_failure_mid_chunk_leaves_the_items_after_it_due_and_the_failing_one_leased(
    sqlite_url: str, make_site: Any, redis_url: str, monkeypatch: Any
) -> None:
    site, first, second, connection, key = learned_pair(make_site(sqlite_url, redis_url=redis_url), redis_url)
    connection.delete(key)
    mark_due(connection, key, [first, second], ahead=True)
    mark_due(connection, key, [f"{jobs.NEIGHBOUR}{first}"])
    catch_up, failed = jobs.search.catch_up, []

    def database_away(db: Any, tenant_id: int, **kwargs: Any) -> bool:
        if not failed:  # the chunk's first item: the database goes away while it is refreshed
            failed.extend(kwargs["items"])
            raise OSError("the database went away")
        return catch_up(db, tenant_id, **kwargs)

    monkeypatch.setattr(jobs.search, "catch_up", database_away)
    with pytest.raises(OSError):
        jobs.refresh_due(connection, site.tenant_id)
    [stuck] = failed
    other = second if stuck == first else first
    # Those after it are due now, not leased for two minutes; it waits out its lease behind
    # them, so an item failing every time holds nobody up. Nothing left the set unrefreshed.
    _, due = take_due(connection, key, 5, lease_s=60)
    assert sorted(due) == sorted([str(other), f"{jobs.NEIGHBOUR}{first}"])
    assert (connection.zscore(key, str(stuck)) or 0) > time.time() * 1000


class Killed(BaseException):
    """The worker dies here (a kill, a job timeout): no handler of the job's runs."""


def test_a_drain_killed_between_its_commit_and_marking_the_items_due_leaves_them_due_after_the_lease(
    sqlite_url: str, make_site: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = two_issue_site(make_site(sqlite_url, redis_url=redis_url))
    issue = host_view(site, "AMQ-1")
    assert post_webhook(site, 1, snapshot(issue, issue["fields"]["summary"], T_A)) < 300

    def killed(tenant_id: int, item_ids: list[int]) -> None:
        raise Killed

    with monkeypatch.context() as patched, pytest.raises(Killed):
        patched.setattr(jobs, "REFRESH_LEASE_S", 0.2)
        patched.setattr(jobs, "_refresh_later", killed)
        jobs.drain_events(site.tenant_id)
    with site.db.session() as session:
        item_id = session.scalar(select(Item.id).where(Item.key == "AMQ-1"))
        assert item_id is not None and precompute.stored_suggestions(session, site.tenant_id, item_id) is None
    time.sleep(0.3)  # the drain's hold on the items ends: the relay finds them due
    jobs.relay_pending_events()
    run_worker(redis_url)
    with site.db.session() as session:
        assert precompute.stored_suggestions(session, site.tenant_id, item_id) is not None
