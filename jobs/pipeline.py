"""Pipeline jobs: thin, idempotent wrappers taking ids; failures raise into rq's failed registry."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Retry, get_current_job
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from connect import forge_presence
from connect.db import Database, utcnow
from connect.host_client import HostClient, HostError
from connect.models import Tenant, WebhookEvent
from jobs import throttle, warming
from jobs.core import (
    QUEUE_BACKLOG,
    QUEUE_BULK,
    QUEUE_DEFAULT,
    QUEUE_REFRESH,
    QUEUES,
    ahead_waiting,
    database,
    due_keys,
    enqueue_coalesced,
    enqueue_unique,
    get_queue,
    hold_due,
    is_live,
    mark_due,
    queued_on,
    redis_connection,
    settle,
    take_due,
)
from plugin import search
from plugin.config import Settings
from plugin.models.pipeline import BackfillState
from plugin.pipeline import (
    backfill,
    digests,
    events,
    privacy_cycle,
    purge,
    reconcile,
    relay,
    versions,
)
from plugin.search import indexer
from plugin.services import privacy, questions
from plugin.services.permissions import SharedAnswers

log = logging.getLogger(__name__)

# A webhook event is retried soon (a transient host or database error) and then backs off.
EVENT_RETRY = Retry(max=6, interval=[2, 15, 60, 300, 900, 1800])


def _settings() -> Settings:
    return Settings.from_env()


def _db() -> Database:
    return database()


def client_for(tenant: Tenant) -> HostClient:
    """The app's signed REST client for a tenant."""
    settings = _settings()
    return HostClient.for_tenant(tenant, settings.app_key, auth_server=settings.auth_server_url)


def _connection() -> Redis | None:
    """The current job's Redis connection (a worker), else REDIS_URL's, else None."""
    job = get_current_job()
    if job is not None:
        return job.connection
    url = _settings().redis_url
    return redis_connection(url) if url else None


def job_id_for(prefix: str, *parts: Any) -> str:
    """A deterministic rq job id (rq allows only [A-Za-z0-9_-]); free-form parts are hashed."""
    digest = hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:20]
    return f"{prefix}-{digest}"


# ---------- webhook events ----------

# A drain job applies batches of its tenant's events for at most this long, then queues its
# continuation on the backlog queue, behind every other site's fresh events and refreshes; it
# yields sooner, after any batch, when another site's events wait. So a site's burst of 100,000
# events never holds a worker while another site's webhook waits (round-robin over sites).
DRAIN_SECONDS = 3.0
# A drain's re-reads wait out a site's Retry-After up to this long; a longer one hands the batch
# back and frees the worker for other sites until the site's time is up.
DRAIN_MAX_WAIT = 5.0
# rq's scheduler counts whole seconds: a job scheduled this much later never starts early.
SCHEDULER_SLACK = 1.0


def enqueue_drain(connection: Redis, tenant_id: int, delay: float = 0.0,
                  queue: str = QUEUE_DEFAULT) -> bool:
    """Make sure a drain of the tenant's stored events waits (one covers any number of events)."""
    return enqueue_coalesced(connection, "jobs.pipeline.drain_events",
                             [(relay.drain_job_id(tenant_id), (tenant_id,))], retry=EVENT_RETRY,
                             delay=delay, queue=queue)


def drain_client_for(tenant: Tenant) -> HostClient:
    """The tenant's client for re-reads: it does not sleep long on a site's Retry-After."""
    settings = _settings()
    return HostClient.for_tenant(tenant, settings.app_key, auth_server=settings.auth_server_url,
                                 max_wait=DRAIN_MAX_WAIT)


def _others_waiting(connection: Redis | None) -> bool:
    """Whether fresh work (another site's drain, say) waits on the main queue."""
    try:
        return connection is not None and get_queue(connection, QUEUE_DEFAULT).count > 0
    except RedisError:
        return False


def drain_events(tenant_id: int) -> int:
    """Apply the tenant's stored events in batches, one transaction each; returns how many.

    A batch that fails is rolled back and each of its events handed to its own job, which
    retries with back-off and fails loudly; the drain goes on with the next batch. A batch the
    site refused as a whole (throttling, an outage) is handed back and the drain waits.
    """
    db, connection, applied = _db(), _connection(), 0
    if connection is not None and (left := _wait_left(connection, tenant_id)) > 0:
        # Resume once the wait is over, whoever recorded it: an event's own job schedules no
        # drain, and rq's scheduler, counting whole seconds, may start the one scheduled for its
        # end a moment early. Left to the relay, the events waited for its next run.
        enqueue_drain(connection, tenant_id, delay=left + SCHEDULER_SLACK)
        return 0
    # Without Redis there is nothing to continue on: drain to the end.
    deadline = time.monotonic() + (DRAIN_SECONDS if connection is not None else math.inf)
    while time.monotonic() < deadline:
        with db.session() as session:
            claimed = relay.claim(session, tenant_id)
        if not claimed:
            return applied
        if len(claimed) == relay.CLAIM and connection is not None:
            # More wait: a second worker may share them, taking its turn like a continuation.
            enqueue_drain(connection, tenant_id, queue=QUEUE_BACKLOG)
        outcome = _apply_batch(db, connection, tenant_id, claimed)
        if outcome is None:
            return applied  # the site asked us to wait: the drain is scheduled for then
        applied += outcome
        if _others_waiting(connection):
            break
    if connection is not None:
        enqueue_drain(connection, tenant_id, queue=QUEUE_BACKLOG)  # continue behind the others
    return applied


def _site_waits(connection: Redis | None, tenant_id: int) -> bool:
    """Whether the site asked us to wait and its time is not up (a webhook's drain, say)."""
    return connection is not None and _wait_left(connection, tenant_id) > 0


def _wait_left(connection: Redis, tenant_id: int) -> float:
    """Seconds until the site's wait is over (0 when none runs, or Redis cannot say)."""
    try:
        wait = throttle.current(connection, tenant_id)
    except RedisError:
        return 0.0
    return max(0.0, wait.until - time.time()) if wait is not None else 0.0


def _apply_batch(db: Database, connection: Redis | None, tenant_id: int,
                 claimed: list[int]) -> int | None:
    """Apply one claimed batch; how many it applied, or None when the site must be waited for."""
    changed: list[int] = []
    try:
        with db.session() as session:
            applied = events.process_events(session, tenant_id, claimed, drain_client_for,
                                            changed)
            _hold_refresh(connection, tenant_id, changed)  # before the commit
    except HostError as exc:
        if exc.status not in throttle.SITE_STATUSES:
            _batch_failed(connection, tenant_id, claimed)
            return 0
        _wait_for_site(db, connection, tenant_id, claimed, exc)
        return None
    except Exception:
        _batch_failed(connection, tenant_id, claimed)
        return 0
    throttle.clear(connection, tenant_id)
    _refresh_later(tenant_id, changed)
    return applied


def _batch_failed(connection: Redis | None, tenant_id: int, event_ids: list[int]) -> None:
    log.exception("a batch of %d events of tenant %s failed; each gets its own job",
                  len(event_ids), tenant_id)
    _hand_over(connection, event_ids)


def _wait_for_site(db: Database, connection: Redis | None, tenant_id: int, event_ids: list[int],
                   error: HostError) -> None:
    """The site refused the batch as a whole: the batch is handed back and the drain waits.

    Per-event jobs would each ask the site again on their own back-off (and earn more 429s);
    the batch is handed back untried and the drain resumes once the site's time is up (its
    Retry-After, else a back-off growing with each refusal in a row).
    """
    with db.session() as session:
        relay.release(session, tenant_id, event_ids)
    if connection is None:
        return  # the relay enqueues the drain again on its next run
    try:
        seconds = throttle.record(connection, tenant_id, error.status, error.retry_after)
    except RedisError:
        return
    log.warning("site of tenant %s refused a batch (%s); its drain resumes in %.0f s", tenant_id,
                error.status, seconds)
    enqueue_drain(connection, tenant_id, delay=seconds)


def _hand_over(connection: Redis | None, event_ids: list[int]) -> None:
    """Give each event its own retrying job; without Redis the relay does it later."""
    for event_id in event_ids:
        if connection is None or not enqueue_event(connection, event_id):
            return


class SiteWaiting(Exception):
    """The event's site asked us to wait: its job is retried later, the site not asked now."""


def process_event(event_id: int) -> bool:
    """Apply one stored event alone (idempotent: a processed event is skipped).

    While its site's wait runs (a drain recorded it), the job fails without asking the site or
    spending an attempt, and rq retries it on its back-off; a refusal by the site starts a wait,
    so the other events' jobs do not each ask again (or each hold a worker on a slow site).
    """
    db, connection = _db(), _connection()
    with db.session() as session:
        event = session.get(WebhookEvent, event_id)
        if event is None or event.processed_at is not None:
            return False
        tenant_id = event.tenant_id
        if _site_waits(connection, tenant_id):
            raise SiteWaiting(f"site of tenant {tenant_id} asked to wait")
        event.attempts = (event.attempts or 0) + 1
    changed: list[int] = []
    try:
        with db.session() as session:
            done = events.process_events(session, tenant_id, [event_id], drain_client_for,
                                         changed) > 0
            _hold_refresh(connection, tenant_id, changed)  # before the commit
    except Exception as exc:
        _event_failed(db, connection, event_id, tenant_id, exc)
        raise
    _refresh_later(tenant_id, changed)
    return done


def _event_failed(db: Database, connection: Redis | None, event_id: int, tenant_id: int,
                  exc: Exception) -> None:
    """Keep the error on the event; a refusal by the site starts (or extends) its wait."""
    with db.session() as session:
        event = session.get(WebhookEvent, event_id)
        if event is not None:
            event.error = f"{type(exc).__name__}: {exc}"[:2000]
    if isinstance(exc, HostError) and exc.status in throttle.SITE_STATUSES and connection:
        with contextlib.suppress(RedisError):
            throttle.record(connection, tenant_id, exc.status, exc.retry_after)


# Changed items wait in a per-tenant due set; one coalescing job per tenant refreshes them a leased
# chunk at a time, so a burst of edits costs one ranking per item and two Redis round trips per
# batch of events (an rq job per item cost more than storing the event did).
REFRESH_CHUNK = 20
REFRESH_LEASE_S = 120.0  # far longer than a chunk takes; a dead worker's chunk is due after it
REFRESH_SECONDS = 3.0
# Events go first, but not always: under a steady stream some drain always waits, and a refresh
# that gave way at once refreshed one item per drain and fell ever further behind.
REFRESH_SLICE_S = 0.5


REFRESH_PREFIX = "inflow:refresh:"


def refresh_key(tenant_id: int) -> str:
    """The Redis due set of the tenant's items whose stored suggestions are stale."""
    return f"{REFRESH_PREFIX}{tenant_id}"


def refresh_item_suggestions(tenant_id: int, item_id: int) -> bool:
    """Refresh an item's stored suggestions and its nearest neighbours' (idempotent)."""
    return _refresh_now(_db(), tenant_id, item_id)


def _refresh_now(db: Database, tenant_id: int, item_id: int) -> bool:
    search.catch_up(db, tenant_id, timeout=search.FRESH_WAIT, items=[item_id])  # rank on the changes it follows
    return versions.refresh_around_apart(db, tenant_id, item_id)


def refresh_suggestions(tenant_id: int) -> int:
    """The refresh job: refresh the tenant's changed items; when it gave way, continue behind the events.

    An item whose refresh fails gets its own retrying job (and fails loudly); the rest go on.
    """
    connection = _connection()
    if connection is None:
        return 0
    count, gave_way = refresh_due(connection, tenant_id)
    if gave_way:
        # Behind the site's own drain when that waits on the backlog queue (a long drain continues
        # there), or the site's refreshes, always due again since each marks neighbours, would hold
        # back the events that make them worth doing.
        behind = QUEUE_BACKLOG if _own_drain_waits(connection, tenant_id) == QUEUE_BACKLOG else QUEUE_REFRESH
        enqueue_refresh(connection, tenant_id, queue=behind)
    return count


def refresh_due(connection: Redis, tenant_id: int) -> tuple[int, bool]:
    """Refresh the tenant's due items, a leased chunk at a time: (how many, whether it gave way).

    After a slice of REFRESH_SLICE_S it gives way to waiting events (they are what makes
    suggestions fresh); the items it did not reach stay due.
    """
    key, count = refresh_key(tenant_id), 0
    events_queue = get_queue(connection, QUEUE_DEFAULT)
    started = time.monotonic()

    def give_way() -> bool:
        now = time.monotonic()
        return now > started + REFRESH_SECONDS or (now > started + REFRESH_SLICE_S and (
            events_queue.count > 0 or _own_drain_waits(connection, tenant_id) is not None))

    wait = search.FRESH_WAIT
    while True:  # at least one item each time: a refresh always makes progress
        lease, members = take_due(connection, key, REFRESH_CHUNK, REFRESH_LEASE_S)
        if not members:
            return count, False
        refreshed, wait = _refresh_chunk(connection, key, tenant_id, (lease, members), give_way, wait)
        count += refreshed
        if give_way():
            return count, True


def _refresh_chunk(connection: Redis, key: str, tenant_id: int, chunk: tuple[int, list[str]],
                   give_way: Callable[[], bool], wait: float) -> tuple[int, float]:
    """Refresh a leased chunk's members in order until it gives way, and settle it: how many were
    refreshed, and how long the next may wait for the indexer.

    When a failure (Redis, the database) ends it, the members refreshed leave the set and those
    after the failing one are due again at once; left leased, they would wait out the lease (two
    minutes). The failing one waits out its lease, behind newer changes: an item failing every
    time does not hold up the rest. Nothing unreached is ever settled, so nothing is lost.
    """
    lease, members = chunk
    count, reached = 0, 0
    try:
        for n, member in enumerate(members):
            # A changed item marked while this chunk's neighbours are refreshed goes first: its
            # viewers wait for it, and the neighbours' viewers see little change.
            if n and (give_way() or (member.startswith(NEIGHBOUR) and ahead_waiting(connection, key))):
                _mark_members_due(connection, key, members[n:])  # not refreshed: due again at once
                break
            # Rank on the change it follows, not on later ones (a burst would keep this waiting),
            # and item by item: the indexer writes the next items' changes while this one ranks.
            if not search.catch_up(_db(), tenant_id, timeout=wait, items=[_item_id(member)]):
                wait = 0.0  # the writer is stalled (a full disk, a long step): one wait per call, not per item
            count += _refresh_member(connection, key, tenant_id, member)
            reached = n + 1
    except Exception:
        with contextlib.suppress(RedisError):
            _mark_members_due(connection, key, members[reached + 1:])
            settle(connection, key, lease, members[:reached])
        raise
    settle(connection, key, lease, members)  # all but those marked due again meanwhile
    return count, wait


def _own_drain_waits(connection: Redis, tenant_id: int) -> str | None:
    """The queue where a drain of the tenant's events waits to run, if one does."""
    base = relay.drain_job_id(tenant_id)
    return queued_on(connection, base) or queued_on(connection, f"{base}-next")


# A due member is a changed item's id, or NEIGHBOUR + the id of an item next to one: a changed
# item's neighbours are marked due when it is refreshed, behind every changed item (changes are
# marked `ahead`), instead of each change costing six rankings before the next change is fresh.
NEIGHBOUR = "n"


def _mark_members_due(connection: Redis, key: str, members: list[str]) -> None:
    """Mark members due again, changed items still ahead of neighbours."""
    mark_due(connection, key, [m for m in members if not m.startswith(NEIGHBOUR)], ahead=True)
    mark_due(connection, key, [m for m in members if m.startswith(NEIGHBOUR)])


def _item_id(member: str) -> int:
    """The item a due member names (a changed item and a neighbour alike)."""
    return int(member.removeprefix(NEIGHBOUR))


def _refresh_member(connection: Redis, key: str, tenant_id: int, member: str) -> bool:
    """Refresh one due member: a changed item (then mark its neighbours due), or a neighbour."""
    neighbour, item_id = member.startswith(NEIGHBOUR), _item_id(member)
    try:
        neighbours = versions.refresh_one(_db(), tenant_id, item_id, neighbours=not neighbour)
    except Exception:
        log.exception("refresh of item %s failed; it gets its own job", item_id)
        _enqueue_item_refresh(connection, tenant_id, item_id)
        return False
    if neighbours:
        mark_due(connection, key, [f"{NEIGHBOUR}{n}" for n in neighbours])
    if neighbours is not None:  # its viewers' next view finds the answers on what changed
        warming.after_refresh(connection, tenant_id, item_id, neighbours, unless_behind=neighbour)
    return neighbours is not None


def _enqueue_item_refresh(connection: Redis, tenant_id: int, item_id: int) -> bool:
    return enqueue_unique(connection, "jobs.pipeline.refresh_item_suggestions", tenant_id,
                          item_id, job_id=f"refresh-{tenant_id}-{item_id}", queue=QUEUE_REFRESH)


def _hold_refresh(connection: Redis | None, tenant_id: int, item_ids: list[int]) -> None:
    """Before a change commits, have its items come due once a lease has passed: a job that dies
    between its commit and `_refresh_later` (killed, timed out) otherwise left them never
    refreshed, its events being processed. Without Redis `_refresh_later` refreshes them now."""
    if connection is not None and item_ids:
        with contextlib.suppress(RedisError):
            hold_due(connection, refresh_key(tenant_id), list(dict.fromkeys(item_ids)),
                     REFRESH_LEASE_S)


def _refresh_later(tenant_id: int, item_ids: list[int]) -> None:
    """Mark the committed changed items stale and make sure a refresh waits; no Redis: refresh
    now, never skip. A refresh ranks on an item's change once it is indexed: this process's
    indexer, if it writes the shard, looks for the change now."""
    if item_ids:
        indexer.wake()
    _refresh_in(_db(), _connection(), tenant_id, item_ids)


def refresh_soon(db: Database, redis_url: str | None, tenant_id: int, item_ids: list[int]) -> None:
    """`_refresh_later` for the web process, on its app's database and Redis (a verdict changed
    what ranks): one coalesced refresh job however many verdicts; without Redis, now."""
    _refresh_in(db, redis_connection(redis_url) if redis_url else None, tenant_id, item_ids)


def _refresh_in(db: Database, connection: Redis | None, tenant_id: int, item_ids: list[int]) -> None:
    item_ids = list(dict.fromkeys(item_ids))
    if not item_ids:
        return
    try:
        if connection is not None:
            mark_due(connection, refresh_key(tenant_id), item_ids, ahead=True)
            if enqueue_refresh(connection, tenant_id):
                return
    except RedisError as exc:
        log.warning("refreshes of %d items run now, Redis unavailable: %s", len(item_ids), exc)
    for item_id in item_ids:
        _refresh_now(db, tenant_id, item_id)


def enqueue_refresh(connection: Redis, tenant_id: int, queue: str = QUEUE_REFRESH) -> bool:
    """Make sure a refresh of the tenant's stale items waits (one covers any number)."""
    return enqueue_coalesced(connection, "jobs.pipeline.refresh_suggestions",
                             [(f"refresh-{tenant_id}", (tenant_id,))], queue=queue)


def enqueue_event(connection: Redis, event_id: int) -> bool:
    """Enqueue the event's own job under its deterministic id."""
    return enqueue_unique(
        connection,
        "jobs.pipeline.process_event",
        event_id,
        job_id=relay.event_job_id(event_id),
        retry=EVENT_RETRY,
    )


def requeue_abandoned(connection: Redis, timestamp: float | None = None) -> None:
    """Let rq retry (or fail) jobs whose worker died: their heartbeat expired before `timestamp`."""
    for name in QUEUES:
        queue = get_queue(connection, name)
        StartedJobRegistry(queue=queue).cleanup(timestamp=timestamp)


def _drain_live(connection: Redis, tenant_id: int) -> bool:
    base = relay.drain_job_id(tenant_id)
    return is_live(connection, base) or is_live(connection, base + "-next")


def relay_pending_events(grace_seconds: int = int(relay.GRACE.total_seconds())) -> int:
    """The outbox relay: enqueue stored events (and requested backfills) that have no live job."""
    connection = _connection()
    if connection is None:
        return 0
    requeue_abandoned(connection)
    outlet = relay.Outlet(
        job_live=lambda job_id: is_live(connection, job_id),
        enqueue_event=lambda event_id: enqueue_event(connection, event_id),
        drain_live=lambda tenant_id: _drain_live(connection, tenant_id),
        enqueue_drain=lambda tenant_id: enqueue_drain(connection, tenant_id),
    )
    with _db().session() as session:
        count = relay.relay(session, outlet, grace=timedelta(seconds=grace_seconds))
        waiting = session.scalars(
            select(BackfillState.tenant_id).where(BackfillState.status.in_(("queued", "running")))
        ).all()
    for tenant_id in waiting:
        enqueue_backfill(connection, tenant_id)
    for key in due_keys(connection, REFRESH_PREFIX):  # chunks left by a worker that died
        enqueue_refresh(connection, int(key.removeprefix(REFRESH_PREFIX)))
    return count


# ---------- backfill ----------


def enqueue_backfill(connection: Redis, tenant_id: int) -> bool:
    """Enqueue the tenant's backfill under its one deterministic id, on the bulk queue."""
    return enqueue_unique(
        connection,
        "jobs.pipeline.run_backfill",
        tenant_id,
        job_id=f"backfill-{tenant_id}",
        queue=QUEUE_BULK,
        timeout=6 * 3600,
    )


def run_backfill(tenant_id: int) -> bool:
    """Run or resume the tenant's backfill, then queue the suggestions it leaves to compute."""
    db = _db()
    ran = backfill.run_backfill(db, tenant_id, client_for)
    # Also when this run found the backfill done: it may be rq's retry of a run that died (or
    # lost Redis) after committing the end and before queueing this. Filling is idempotent.
    if ran or _backfill_done(db, tenant_id):
        queue_suggestions(tenant_id)
    return ran


def queue_suggestions(tenant_id: int) -> bool:
    """Queue storing the suggestions of every item a backfill read; False with no Redis configured."""
    connection = _connection()
    if connection is None:
        return False
    queued = enqueue_unique(
        connection,
        "jobs.pipeline.fill_suggestions",
        tenant_id,
        job_id=f"suggestions-{tenant_id}",
        queue=QUEUE_BULK,
        timeout=6 * 3600,
    )
    if not queued:  # nothing else queues it: fail, so that rq's retry does
        raise RuntimeError(f"suggestions of tenant {tenant_id} not queued, Redis unavailable")
    return True


def _backfill_done(db: Database, tenant_id: int) -> bool:
    """Whether the tenant's last backfill read everything."""
    with db.session() as session:
        return bool(backfill.backfill_status(session, tenant_id)["status"] == "done")


def fill_suggestions(tenant_id: int) -> int:
    """Store suggestions for every item of the tenant that has none yet."""
    return backfill.fill_suggestions(_db(), tenant_id)


# ---------- reconciliation ----------

# How long an item's refresh has to store its suggestions before the fill does it instead.
LEFT_BEHIND = timedelta(hours=1)


def _installed_tenants() -> list[int]:
    with _db().session() as session:
        return list(
            session.scalars(
                select(Tenant.id).where(Tenant.installed.is_(True), Tenant.enabled.is_(True))
            )
        )


def _fan_out(func: str, prefix: str, tenant_ids: list[int], run: Any) -> int:
    """One job per tenant under a deterministic id; inline when there is no Redis."""
    connection = _connection()
    for tenant_id in tenant_ids:
        if connection is None:
            run(tenant_id)
        else:
            enqueue_unique(
                connection,
                func,
                tenant_id,
                job_id=f"{prefix}-{tenant_id}",
                queue=QUEUE_BULK,
                timeout=3600,
            )
    return len(tenant_ids)


def reconcile_all_tenants() -> int:
    """Enqueue one reconciliation per installed tenant."""
    return _fan_out(
        "jobs.pipeline.reconcile_tenant", "reconcile", _installed_tenants(), reconcile_tenant
    )


def reconcile_tenant(tenant_id: int) -> dict[str, int]:
    """Catch up one tenant with the host since its watermark; what changed is refreshed as a
    drain's changes are (once indexed), not ranked inside the reconciliation's transactions."""
    result = reconcile.reconcile_tenant(_db(), tenant_id, client_for,
                                        refresh=lambda item_ids: _refresh_later(tenant_id, item_ids))
    _fill_left_behind(tenant_id)
    return result


def _fill_left_behind(tenant_id: int) -> None:
    """Queue the fill when items of a finished backfill still have no suggestions an hour on.

    Nothing else would: a fill that failed for good, or a backfill run by `inflow backfill`
    with no Redis to queue it on. Items written within the hour are left to their refresh.
    """
    db = _db()
    if not _backfill_done(db, tenant_id):
        return  # the backfill queues the fill when it ends
    with db.session() as session:
        left = backfill.left_without_suggestions(session, tenant_id, utcnow() - LEFT_BEHIND)
    if left:
        queue_suggestions(tenant_id)


def enqueue_reconcile(connection: Redis, tenant_id: int) -> bool:
    """Queue one tenant's reconciliation (the id the periodic fan-out uses: never two at once)."""
    return enqueue_unique(connection, "jobs.pipeline.reconcile_tenant", tenant_id,
                          job_id=f"reconcile-{tenant_id}", queue=QUEUE_BULK, timeout=3600)


def check_forge_installations() -> dict[str, int]:
    """Ask each Forge site a cheap question as the app; consistent refusals mark it uninstalled."""
    return forge_presence.check_all(_db(), client_for)


# ---------- questions and recognition ----------


def run_question_followups() -> dict[str, int]:
    """Remind experts whose follow-up time passed, then pass questions on (each once per period)."""
    db = _db()
    outcome: dict[str, int] = {}
    with db.session() as session:
        due = questions.due_followups(session, utcnow())
    for question_id in due:
        result = _follow_up_one(db, question_id)
        outcome[result] = outcome.get(result, 0) + 1
    return outcome


def _follow_up_one(db: Database, question_id: int) -> str:
    """One question's follow-up in its own session; a failure is logged and the run goes on."""
    try:
        with db.session() as session:
            # `follow_up` claims the question first, so a run at the same time skips it.
            return questions.follow_up(session, question_id, client_for, utcnow())
    except Exception:
        # One broken question must not hold up the others; it stays open and comes back (after
        # the retry delay when it was claimed).
        log.exception("follow-up of question %s failed", question_id)
        return "failed"


def send_weekly_digests() -> dict[str, int]:
    """Send last week's digest to every subscriber who has not had it (idempotent per week)."""
    db, week = _db(), digests.last_week(utcnow())
    outcome: dict[str, int] = {}
    with db.session() as session:
        due = digests.due(session, week)
        tenants = {
            t.id: t
            for t in session.scalars(select(Tenant).where(Tenant.id.in_({t for t, _ in due})))
        }
    for tenant_id, account_id in due:
        result = _send_digest_one(db, tenants[tenant_id], account_id, week)
        outcome[result] = outcome.get(result, 0) + 1
    return outcome


def _send_digest_one(db: Database, tenant: Tenant, account_id: str, week: date) -> str:
    """One person's digest; a failure is logged and the run goes on to the others."""
    try:
        return digests.send_digest(db, tenant.id, account_id, week, client_for(tenant))
    except Exception:
        # Subscribers are sent in one order every run: one the site refuses each time (its issue
        # made private, say) must not keep everyone after it from their digest. Its claim was
        # released, so the next run tries it again.
        log.exception("digest of %s on tenant %s failed", account_id, tenant.id)
        return "failed"


# ---------- privacy and purge ----------


def run_privacy_reporting() -> int:
    """Enqueue the personal-data report of every tenant whose cycle is due."""
    with _db().session() as session:
        due = privacy_cycle.due_tenants(session, utcnow())
    return _fan_out("jobs.pipeline.report_personal_data", "privacy", due, report_personal_data)


def report_personal_data(tenant_id: int) -> dict[str, int]:
    """Report one tenant's accounts; erase the closed ones, refresh the updated ones."""
    db = _db()
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
    if tenant is None or not tenant.installed:
        return {}
    try:
        return privacy_cycle.report_tenant(db, tenant_id, client_for(tenant),
                                           erased=lambda accounts: _forget_on_site(tenant_id, accounts))
    except Exception as exc:
        privacy_cycle.record_failure(db, tenant_id, exc)
        raise


def erase_person(tenant_id: int, account_id: str) -> None:
    """Erase one person's data everywhere on a tenant's site (a request from their personal page)."""
    with _db().session() as session:
        tenants = privacy.erase_person(session, tenant_id, account_id)
    for erased_in in tenants:  # both products' installations, as the erasure itself
        _forget(erased_in, [account_id])


def _forget_on_site(tenant_id: int, accounts: list[str]) -> None:
    """Drop closed accounts' Redis keys in both products' installations, as their erasure did."""
    with _db().session() as session:
        tenants = privacy.site_tenants(session, tenant_id)
    for erased_in in tenants:
        _forget(erased_in, accounts)


def _forget(tenant_id: int, accounts: list[str]) -> None:
    """Drop erased people's recent views and permission answers kept in Redis."""
    if accounts and (connection := _connection()) is not None:
        SharedAnswers(connection).forget(tenant_id, set(accounts))


def enqueue_erasure(connection: Redis, tenant_id: int, account_id: str) -> bool:
    """Enqueue an erasure under an id derived from tenant and account (repeats collapse)."""
    return enqueue_unique(
        connection,
        "jobs.pipeline.erase_person",
        tenant_id,
        account_id,
        job_id=job_id_for("erase", tenant_id, account_id),
    )


def purge_old_events() -> int:
    """Delete webhook events processed a week ago (and given-up ones a month old)."""
    return purge.purge_old_events(_db())


def purge_uninstalled_tenants() -> list[int]:
    """Delete all data of tenants uninstalled longer than Settings.purge_after_days."""
    db, days = _db(), _settings().purge_after_days
    with db.session() as session:
        due = purge.due_for_purge(session, days)
    for tenant_id in due:
        with db.session() as session:
            purge.purge_tenant(session, tenant_id)
    return due
