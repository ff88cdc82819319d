"""Queue names, the Redis connection, the per-process database, and safe enqueueing."""
from __future__ import annotations

import functools
import logging
import time
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
# takes backfills so they never delay fresh webhook events.
QUEUE_DEFAULT = "inflow"
QUEUE_REFRESH = "inflow-refresh"
QUEUE_BULK = "inflow-bulk"
QUEUES = (QUEUE_DEFAULT, QUEUE_REFRESH, QUEUE_BULK)

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


def job_status(connection: Redis, job_id: str) -> str | None:
    """The job's status, or None when there is no such job (or its hash has no status yet)."""
    status = connection.hget(f"{Job.redis_job_namespace_prefix}{job_id}", "status")
    return status.decode() if isinstance(status, bytes) else status


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
                      timeout: int = DEFAULT_TIMEOUT) -> bool:
    """Enqueue each (base id, args) call unless a job of that id waits; False when Redis is down.

    One job waiting per base id covers any number of calls; while it runs, a second id
    (`<base>-next`) waits for what it may already have missed. Two round trips for all calls.
    """
    try:
        with connection.pipeline(transaction=False) as pipe:
            for base, _ in calls:
                pipe.hget(f"{Job.redis_job_namespace_prefix}{base}", "status")
                pipe.hget(f"{Job.redis_job_namespace_prefix}{base}-next", "status")
            found = [s.decode() if isinstance(s, bytes) else s for s in pipe.execute()]
        stamp = time.time_ns() // 1000
        datas = [Queue.prepare_data(func, args, job_id=job_id, timeout=timeout,
                                    retry=retry or Retry(max=3, interval=[30, 300, 1800]),
                                    failure_ttl=FAILURE_TTL, result_ttl=RESULT_TTL)
                 for n, (base, args) in enumerate(calls)
                 if (job_id := _coalesced_id(base, found[2 * n], found[2 * n + 1], stamp))]
        if datas:
            get_queue(connection, queue).enqueue_many(datas)
        return True
    except RedisError as exc:
        log.warning("enqueue of %d %s job(s) skipped, Redis unavailable: %s", len(calls), func, exc)
        return False
