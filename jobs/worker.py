"""The rq worker: Inflow's queues, the JSON serializer, rq's scheduler and the periodic jobs."""
from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterable

from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from jobs import refresher
from jobs.core import get_queue, worker_queues
from jobs.scheduling import PeriodicJob, reconcile

log = logging.getLogger(__name__)

DEFAULT_SCHEDULE = "jobs.schedule:PERIODIC_JOBS"


def load_schedule(ref: str) -> list[PeriodicJob]:
    """The periodic jobs named by `module:attribute`; "none" means no periodic jobs."""
    if ref == "none":
        return []
    module_name, _, attr = ref.partition(":")
    return list(getattr(importlib.import_module(module_name), attr or "PERIODIC_JOBS"))


def worker_connection(redis_url: str) -> Redis:
    """A connection without a socket timeout: rq blocks on the queues for minutes at a time."""
    return Redis.from_url(redis_url, socket_connect_timeout=5, health_check_interval=30)


class Worker(SimpleWorker):
    """rq's non-forking worker, remembering whether it was told to stop (SIGINT/SIGTERM)."""

    stop_requested = False

    def request_stop(self, signum: int, frame: object) -> None:
        """Remember the request, then rq's warm shutdown."""
        self.stop_requested = True
        super().request_stop(signum, frame)

    def unsubscribe(self) -> None:
        """rq's, with the command thread told to stop before the unsubscribe wakes it.

        rq unsubscribes, then stops the thread, whose `stop()` waits for it (redis-py 8). A thread
        that heard the unsubscribe before `stop()` cleared its flag went on to wait a minute (rq's
        sleep_time) for a subscription: a worker stopped soon after it started hung that long.
        """
        if self.pubsub_thread is not None:
            self.pubsub_thread.stop(timeout=0)  # the flag only; the unsubscribe's answer ends it
        super().unsubscribe()


def build_worker(connection: Redis, name: str | None = None) -> Worker:
    """A non-forking rq worker on the local shards' queues and every Inflow queue, in priority order.

    Why SimpleWorker: the process keeps its database pool, its host connections and its open
    search shards across jobs, and runs the shards' indexer threads beside them; a fork per job
    would start all of that again each time. Jobs stay idempotent, so a crash mid-job is
    recovered by rq's abandoned-job handling and the outbox relay, exactly as with a killed fork.
    """
    queues = [get_queue(connection, q) for q in worker_queues()]
    name = name or f"inflow.{socket.gethostname()}.{os.getpid()}"
    return Worker(queues, connection=connection, serializer=JSONSerializer, name=name)


NICENESS = 10  # a worker's CPU priority: below the web processes of a host it shares


def lower_priority() -> None:
    """Run this process (and the threads it starts after) below the host's web processes.

    A panel view is waited for; a refresh, a drain and a backfill can wait a moment. On a host
    running both, the worker's refreshes otherwise take the cores the open panels need; on a
    host of workers alone this changes nothing.
    """
    with contextlib.suppress(OSError):  # not permitted here: run at the priority given
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < NICENESS:
            os.setpriority(os.PRIO_PROCESS, 0, NICENESS)


def run_worker(redis_url: str, schedule: Iterable[PeriodicJob], burst: bool = False,
               name: str | None = None, logging_level: str = "INFO") -> int:
    """Reconcile the periodic jobs, then work until stopped (SIGINT/SIGTERM: warm shutdown).

    Beside the jobs, each local search shard gets an indexer thread: the one of the machine's
    workers that holds the shard's lock writes it, the others stand by to take over. A refresher
    process refreshes stale stored suggestions while the jobs wait on sites (`jobs.refresher`).

    rq quits on a Redis error outside a job (a full Redis refuses even the record of a job's
    end). This process then waits until Redis takes writes again and works on as a new rq
    worker, rather than exiting into a restart loop that a full Redis would refuse as well.
    """
    connection = worker_connection(redis_url)
    connection.ping()  # fail fast, with a clear error, when Redis is not there
    lower_priority()
    from jobs.core import database
    from plugin.config import Settings
    from plugin.search import indexer

    stop, requested = threading.Event(), threading.Event()
    indexer.start(database(), Settings.from_env(), stop)
    # A burst worker runs its queues empty and ends; refresh jobs do its refreshing.
    refreshing = None if burst else refresher.start(redis_url, stop)
    base = name or f"inflow.{socket.gethostname()}.{os.getpid()}"
    try:
        for attempt in itertools.count():
            if attempt and not _wait_for_room(connection, requested):
                return 0  # stopped while waiting
            try:
                reconcile(connection, schedule)
                worker = build_worker(connection, f"{base}.{attempt}" if attempt else base)
                worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
            except RedisError:
                log.warning("Redis refused a write the worker needs: waiting for it", exc_info=True)
                continue
            if burst or worker.stop_requested:
                return 0
            # rq logged the error it quit on; its registry entry expires (the next name differs)
    finally:
        indexer.halt(stop)  # the refresher's supervisor watches the same event
        if refreshing is not None:
            refreshing.join()  # the refresher process stopped with this one
    return 0


def _wait_for_room(connection: Redis, requested: threading.Event, most: float = 10.0) -> bool:
    """Wait a moment, then until Redis takes a write; False when SIGINT/SIGTERM came meanwhile."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: requested.set())
    probe, delay, told = f"inflow:worker-room:{os.getpid()}", 1.0, False
    while not requested.wait(delay):
        try:
            connection.set(probe, "1", ex=60)
            connection.delete(probe)
        except RedisError as exc:
            if not told:
                log.warning("Redis does not take writes (%s): waiting for room", exc)
                told = True
            delay = min(most, delay * 2)
            continue
        if told:
            log.info("Redis takes writes again: working on")
        return True
    return False
