"""Queue names, the Redis connection, the per-process database, and safe enqueueing."""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, WatchError
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


def _job_key(job_id: str) -> str:
    """Where rq keeps a job (the one place that knows)."""
    return f"{Job.redis_job_namespace_prefix}{job_id}"


def _status_of(pipe: Any, job_id: str) -> Any:
    """Ask for a job's status field."""
    return pipe.hget(_job_key(job_id), "status")


def decoded(value: Any) -> Any:
    """A Redis reply as text: bytes decoded (a client without decode_responses), else as it is."""
    return value.decode() if isinstance(value, bytes) else value


def job_status(connection: Redis, job_id: str) -> str | None:
    """The job's status, or None when there is no such job (or its hash has no status yet)."""
    return decoded(_status_of(connection, job_id))


def queued_on(connection: Redis, job_id: str) -> str | None:
    """The queue where the job waits to run, or None when it is not waiting in one."""
    status, origin = connection.hmget(_job_key(job_id), ["status", "origin"])
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
    return _enqueue_watched(connection, func, args, [job_id],
                            lambda found: None if found[0] in LIVE_STATUSES else job_id,
                            queue, retry, timeout)


WAITING_STATUSES = ("queued", "scheduled", "deferred")


def _coalesced_id(base: str, status: str | None, next_status: str | None, stamp: int) -> str | None:
    """The id to enqueue under, or None when a waiting job already covers the call."""
    for job_id, current in ((base, status), (base + "-next", next_status)):
        if current in WAITING_STATUSES:
            return None  # it has not started, so it will see whatever this call is about
        if current != "started":
            return job_id
    return f"{base}-{stamp}"  # both run (two workers): a third, so nothing is missed


def enqueue_coalesced(connection: Redis, func: str, base: str, args: tuple[Any, ...],
                      queue: str = QUEUE_DEFAULT, retry: Retry | None = None,
                      timeout: int = DEFAULT_TIMEOUT, delay: float = 0.0) -> bool:
    """Enqueue the call under `base` unless a job of that id waits; False when Redis is down.

    One job waiting per base id covers any number of calls; while it runs, a second id
    (`<base>-next`) waits for what it may already have missed. With `delay` (seconds) the job is
    scheduled that much later (a scheduled job waits too).
    """
    stamp = time.time_ns() // 1000
    return _enqueue_watched(connection, func, args, [base, base + "-next"],
                            lambda found: _coalesced_id(base, found[0], found[1], stamp),
                            queue, retry, timeout, delay)


WATCH_ATTEMPTS = 5


def _enqueue_watched(connection: Redis, func: str, args: tuple[Any, ...], watched: list[str],
                     choose: Callable[[list[str | None]], str | None], queue: str,
                     retry: Retry | None, timeout: int, delay: float = 0.0) -> bool:
    """Enqueue under the id `choose` picks from the watched jobs' statuses (None: nothing to do).

    Why WATCH: two web processes taking a site's webhooks at once both found no waiting drain
    and both pushed it, so one drain ran twice. A first look (one round trip) usually finds a
    waiting job; otherwise the statuses are read again and the job pushed in one transaction,
    which fails if another caller enqueued meanwhile: it then decides again on what that left.
    """
    try:
        with connection.pipeline(transaction=False) as look:
            for job_id in watched:
                _status_of(look, job_id)
            if choose([decoded(status) for status in look.execute()]) is None:
                return True
        with connection.pipeline() as pipe:
            for _ in range(WATCH_ATTEMPTS):
                try:
                    pipe.watch(*map(_job_key, watched))  # until multi(), commands run at once
                    chosen = choose([decoded(_status_of(pipe, job_id)) for job_id in watched])
                    if chosen is None:
                        return True
                    pipe.multi()
                    _push(get_queue(connection, queue), pipe, func, args, chosen, retry, timeout, delay)
                    pipe.execute()
                    return True
                except WatchError:
                    continue
        log.warning("enqueue of %s given up: its jobs kept changing", watched[0])
        return False
    except RedisError as exc:
        log.warning("enqueue of %s skipped, Redis unavailable: %s", watched[0], exc)
        return False


def _push(target: Queue, pipe: Any, func: str, args: tuple[Any, ...], job_id: str,
          retry: Retry | None, timeout: int, delay: float) -> None:
    """Add the job's commands to the transaction: queued now, or scheduled `delay` seconds on."""
    options: dict[str, Any] = {"retry": retry or Retry(max=3, interval=[30, 300, 1800]),
                               "failure_ttl": FAILURE_TTL, "result_ttl": RESULT_TTL}
    if delay > 0:
        target.enqueue_in(timedelta(seconds=delay), func, *args, job_id=job_id, job_timeout=timeout,
                          pipeline=pipe, **options)
    else:
        target.enqueue_many([Queue.prepare_data(func, args, job_id=job_id, timeout=timeout, **options)],
                            pipeline=pipe)


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
            pipe.execute()


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
