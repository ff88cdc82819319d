"""Queue names, the Redis connection, the per-process database, and safe enqueueing."""
from __future__ import annotations

import functools
import logging
import time
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from connect.db import Database
from plugin.config import Settings

log = logging.getLogger(__name__)

# Queue names live here only, in the order workers take from them. `inflow` is the main queue
# (webhook events, questions); `inflow-refresh` recomputes stored suggestions after changes, so a
# burst of events is applied first and each item's refresh (coalesced) follows; `inflow-bulk`
# takes backfills so they never delay fresh webhook events. `inflow-backlog` takes the continuation
# of a drain that used its time slice: a site with a long backlog takes turns behind every other
# site's fresh events and refreshes, so its burst never delays another site's suggestions.
QUEUE_DEFAULT = "inflow"
QUEUE_REFRESH = "inflow-refresh"
QUEUE_BACKLOG = "inflow-backlog"
QUEUE_BULK = "inflow-bulk"
QUEUES = (QUEUE_DEFAULT, QUEUE_REFRESH, QUEUE_BACKLOG, QUEUE_BULK)


def worker_queues(settings: Settings | None = None) -> tuple[str, ...]:
    """What this machine's workers take from, first first: rankings other machines ask of its
    shards (someone waits for each), then every Inflow queue."""
    from plugin.search.remote import queue_name

    settings = settings or Settings.from_env()
    return (*(queue_name(shard) for shard in settings.shards), *QUEUES)

DEFAULT_TIMEOUT = 600
FAILURE_TTL = 7 * 24 * 3600  # a failed job waits a week for an operator
RESULT_TTL = 3600


@functools.lru_cache(maxsize=8)
def redis_connection(url: str) -> Redis:
    """One Redis client per URL per process."""
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)


def get_queue(connection: Redis, name: str = QUEUE_DEFAULT) -> Queue:
    """An rq queue using the JSON serializer (jobs take JSON-safe arguments)."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


@functools.lru_cache(maxsize=1)
def _database_for(url: str) -> Database:
    return Database(url)


def database(settings: Settings | None = None) -> Database:
    """The worker process's Database, built once from the environment."""
    settings = settings or Settings.from_env()
    return _database_for(settings.database_url)


LIVE_STATUSES = ("queued", "started", "scheduled", "deferred")


def _status_of(pipe: Any, job_id: str) -> Any:
    """Ask for a job's status field (the one place that knows where rq keeps it)."""
    return pipe.hget(f"{Job.redis_job_namespace_prefix}{job_id}", "status")


def decoded(value: Any) -> Any:
    """A Redis reply as text: bytes decoded (a client without decode_responses), else as it is."""
    return value.decode() if isinstance(value, bytes) else value


def job_status(connection: Redis, job_id: str) -> str | None:
    """The job's status, or None when there is no such job (or its hash has no status yet)."""
    return decoded(_status_of(connection, job_id))


def queued_on(connection: Redis, job_id: str) -> str | None:
    """The queue where the job waits to run, or None when it is not waiting in one."""
    status, origin = connection.hmget(f"{Job.redis_job_namespace_prefix}{job_id}", ["status", "origin"])
    return decoded(origin) if decoded(status) == "queued" else None


def is_live(connection: Redis, job_id: str) -> bool:
    """True when a job with this id is waiting or running."""
    return job_status(connection, job_id) in LIVE_STATUSES


def enqueue_unique(connection: Redis, func: str, *args: Any, job_id: str,
                   queue: str = QUEUE_DEFAULT, retry: Retry | None = None,
                   timeout: int = DEFAULT_TIMEOUT) -> bool:
    """Enqueue unless a job with that id is waiting or running; False when Redis is down.

    Callers rely on the outbox relay (stored events are the truth) rather than on this
    call succeeding.
    """
    try:
        if is_live(connection, job_id):
            return True
        get_queue(connection, queue).enqueue(
            func, *args, job_id=job_id, retry=retry or Retry(max=3, interval=[30, 300, 1800]),
            job_timeout=timeout, failure_ttl=FAILURE_TTL, result_ttl=RESULT_TTL)
        return True
    except RedisError as exc:
        log.warning("enqueue of %s skipped, Redis unavailable: %s", job_id, exc)
        return False


WAITING_STATUSES = ("queued", "scheduled", "deferred")


def _coalesced_id(base: str, status: str | None, next_status: str | None, stamp: int) -> str | None:
    """The id to enqueue under, or None when a waiting job already covers the call."""
    for job_id, current in ((base, status), (base + "-next", next_status)):
        if current in WAITING_STATUSES:
            return None  # it has not started, so it will see whatever this call is about
        if current != "started":
            return job_id
    return f"{base}-{stamp}"  # both run (two workers): a third, so nothing is missed


def enqueue_coalesced(connection: Redis, func: str, calls: list[tuple[str, tuple[Any, ...]]],
                      queue: str = QUEUE_DEFAULT, retry: Retry | None = None,
                      timeout: int = DEFAULT_TIMEOUT, delay: float = 0.0) -> bool:
    """Enqueue each (base id, args) call unless a job of that id waits; False when Redis is down.

    One job waiting per base id covers any number of calls; while it runs, a second id
    (`<base>-next`) waits for what it may already have missed. Two round trips for all calls.
    With `delay` (seconds) the jobs are scheduled that much later (a scheduled job waits too).

    Two callers at the same moment may both push an id: the job then runs twice, which jobs are
    built for. Reading and pushing in one WATCH transaction prevented it but cost each due call
    several round trips, each waiting for the GIL in a busy web process: a burst's webhooks were
    accepted more slowly (figures in the commit that removed it).
    """
    try:
        with connection.pipeline(transaction=False) as pipe:
            for base, _ in calls:
                _status_of(pipe, base)
                _status_of(pipe, base + "-next")
            found = [decoded(status) for status in pipe.execute()]
        stamp = time.time_ns() // 1000
        options: dict[str, Any] = {"retry": retry or Retry(max=3, interval=[30, 300, 1800]),
                                   "failure_ttl": FAILURE_TTL, "result_ttl": RESULT_TTL}
        due = [(job_id, args) for n, (base, args) in enumerate(calls)
               if (job_id := _coalesced_id(base, found[2 * n], found[2 * n + 1], stamp))]
        target = get_queue(connection, queue)
        if delay > 0:
            for job_id, args in due:
                target.enqueue_in(timedelta(seconds=delay), func, *args, job_id=job_id,
                                  job_timeout=timeout, **options)
        elif due:
            target.enqueue_many([Queue.prepare_data(func, args, job_id=job_id, timeout=timeout,
                                                    **options) for job_id, args in due])
        return True
    except RedisError as exc:
        log.warning("enqueue of %d %s job(s) skipped, Redis unavailable: %s", len(calls), func, exc)
        return False


# A due set: a sorted set of members scored by the time (ms) they are due. A taker leases what it
# takes (its score moves to the lease's end), so concurrent takers get different members and a
# taker that dies leaves them due again once the lease ends; marking a member due again while it
# is leased (it changed meanwhile) makes its taker's `settle` keep it for the next taker.
_TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[3], member) end
return due
"""
_SETTLE = """
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]) or -1) == lease then
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return 0
"""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


DUE_INDEX = "inflow:due-sets"  # every due set's key, so finding the due ones needs no key scan
DUE_NOTICE = "inflow:due-notice"  # one token, pushed when members are marked due


def wait_for_due(connection: Redis, timeout: float) -> None:
    """Wait until members are marked due somewhere, or `timeout` seconds.

    Why: an idle taker that only looked every so often added half its interval, on average, to
    every change's refresh on a quiet site. A notice may be stale (taken members were marked
    since): the taker then finds nothing due and waits again.
    """
    connection.blpop([DUE_NOTICE], timeout=timeout)


# Members marked `ahead` are scored this far in the past: due before every member marked without
# it, however long those have waited, and in the order they were marked among themselves.
AHEAD_MS = 10**12


def mark_due(connection: Redis, key: str, members: list[Any], ahead: bool = False) -> None:
    """Make members due now (again, if a taker holds them: it will not settle them).

    A member already due keeps its earlier time (ZADD LT): an item changed again while it waits
    is refreshed once, in its first place. Moved to the back at each change, an issue commented
    on every few seconds was never reached while a burst lasted.
    """
    if members:
        now = _now_ms() - (AHEAD_MS if ahead else 0)
        with connection.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {str(m): now for m in members}, lt=True)
            pipe.sadd(DUE_INDEX, key)
            pipe.lpush(DUE_NOTICE, 1)  # an idle taker waiting on it looks now (`wait_for_due`)
            pipe.ltrim(DUE_NOTICE, 0, 0)
            pipe.execute()


_HOLD = """
local now, hold = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if not score or tonumber(score) > now then redis.call('ZADD', KEYS[1], hold, ARGV[i]) end
end
redis.call('SADD', KEYS[2], KEYS[1])
return 0
"""


def hold_due(connection: Redis, key: str, members: list[Any], seconds: float) -> None:
    """Make members due `seconds` from now, before a change is committed (unless already due).

    Why: a caller that commits a change and then marks it due can die in between, and the
    change is then never refreshed. Held first, it comes due when the hold ends; marked due
    after the commit, it is due at once (`mark_due` lowers the score). A member a taker leases
    is held too, so the taker's `settle` keeps it; one already due keeps its place (`mark_due`).
    """
    if members:
        now = _now_ms()
        connection.register_script(_HOLD)(keys=[key, DUE_INDEX],
                                          args=[now, now + int(seconds * 1000), *map(str, members)])


def ahead_waiting(connection: Redis, key: str) -> bool:
    """Whether a member marked `ahead` is due and not taken."""
    return bool(connection.zcount(key, "-inf", _now_ms() - AHEAD_MS))


def take_due(connection: Redis, key: str, count: int, lease_s: float) -> tuple[int, list[str]]:
    """Lease up to `count` due members; returns the lease's end (for `settle`) and them."""
    now = _now_ms()
    lease = now + int(lease_s * 1000)
    taken = connection.register_script(_TAKE_DUE)(keys=[key], args=[now, count, lease])
    return lease, [str(decoded(m)) for m in taken]


def settle(connection: Redis, key: str, lease: int, members: list[str]) -> None:
    """Remove taken members that were not marked due again while leased."""
    if members:
        connection.register_script(_SETTLE)(keys=[key], args=[lease, *members])


_FORGET_EMPTY = """
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SREM', KEYS[1], KEYS[2]) end
return 0
"""


def due_keys(connection: Redis, prefix: str) -> list[str]:
    """Due sets under `prefix` that hold a due member (one left by a taker that died, say).

    Read from the index of due sets rather than by scanning Redis's keys, which grow with every
    job; emptied sets leave the index (atomically, so a set refilled meanwhile stays).
    """
    now, due = _now_ms(), []
    forget = connection.register_script(_FORGET_EMPTY)
    for key in map(decoded, connection.smembers(DUE_INDEX)):
        if key is None or not key.startswith(prefix):
            continue
        if connection.zcount(key, "-inf", now):
            due.append(key)
        else:
            forget(keys=[DUE_INDEX, key])
    return sorted(due)
