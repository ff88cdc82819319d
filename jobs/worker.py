"""The rq worker: Inflow's queues, the JSON serializer, rq's scheduler and the periodic jobs."""
from __future__ import annotations

import importlib
import logging
import os
import socket
from collections.abc import Iterable

from redis import Redis
from rq import Worker
from rq.serializers import JSONSerializer

from jobs.core import QUEUES, get_queue
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


def build_worker(connection: Redis, name: str | None = None) -> Worker:
    """A forking rq Worker on every Inflow queue, in priority order."""
    queues = [get_queue(connection, q) for q in QUEUES]
    name = name or f"inflow.{socket.gethostname()}.{os.getpid()}"
    return Worker(queues, connection=connection, serializer=JSONSerializer, name=name)


def run_worker(redis_url: str, schedule: Iterable[PeriodicJob], burst: bool = False,
               name: str | None = None, logging_level: str = "INFO") -> int:
    """Reconcile the periodic jobs, then work until stopped (SIGINT/SIGTERM: warm shutdown)."""
    connection = worker_connection(redis_url)
    connection.ping()  # fail fast, with a clear error, when Redis is not there
    reconcile(connection, schedule)
    worker = build_worker(connection, name)
    worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
    return 0
