"""Periodic jobs declared as data, run by rq's scheduler under deterministic ids.

Time is cut into slots of `interval_seconds` (aligned to the Unix epoch). The run of job `relay`
for slot N has the id `periodic-relay-N` (rq allows only letters, digits, `_` and `-` in ids)
and is scheduled for the start of that slot. Each run first schedules the next slot's run, then
does its work, so a failing run never breaks the chain; the deterministic ids make scheduling
idempotent, so any number of workers reconciling at start (or runs racing) still leave exactly
one run per slot.
"""
from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Retry, get_current_job
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from jobs.core import DEFAULT_TIMEOUT, QUEUE_DEFAULT, QUEUES, get_queue

log = logging.getLogger(__name__)

PREFIX = "periodic"
RESULT_TTL = 600          # finished runs are only interesting briefly
# Failed runs stay visible in `inflow status` for a day; a job failing every 30 s for a week
# would otherwise pile up thousands of tracebacks in Redis.
FAILURE_TTL = 24 * 3600
# A run whose next run Redis refused is run again this much later (seconds), up to 5 times.
SCHEDULE_RETRY_INTERVALS = [2, 10, 30]


@dataclass(frozen=True)
class PeriodicJob:
    """A function (dotted path, no arguments) run every `interval_seconds`."""

    id: str
    func_path: str
    interval_seconds: int
    timeout_seconds: int = DEFAULT_TIMEOUT
    queue: str = QUEUE_DEFAULT


def slot_at(interval_seconds: int, at: float | None = None) -> int:
    """The number of the time slot containing `at` (default: now)."""
    return int((time.time() if at is None else at) // interval_seconds)


def run_id(job_id: str, slot: int) -> str:
    """The deterministic rq job id of one run of a periodic job."""
    return f"{PREFIX}-{job_id}-{slot}"


def tenant_job_id(name: str, tenant_id: int, interval_seconds: int, at: float | None = None) -> str:
    """A deterministic id for the per-tenant job a periodic fan-out enqueues in this slot."""
    return f"{name}-{slot_at(interval_seconds, at)}-tenant-{tenant_id}"


def resolve(func_path: str) -> Callable[[], Any]:
    """Import the function a dotted path names."""
    module_name, _, attr = func_path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def schedule_run(connection: Redis, periodic: PeriodicJob, slot: int) -> bool:
    """Schedule the run of `slot` at the slot's start; False if that run already exists."""
    queue = get_queue(connection, periodic.queue)
    when = datetime.fromtimestamp(slot * periodic.interval_seconds, UTC)
    try:
        queue.enqueue_at(when, run_periodic, asdict(periodic), job_id=run_id(periodic.id, slot),
                         unique=True, job_timeout=periodic.timeout_seconds,
                         result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
                         description=f"periodic {periodic.id} ({periodic.func_path})")
    except DuplicateJobError:
        return False
    return True


def run_periodic(spec: dict[str, Any]) -> Retry | None:
    """The rq job behind every periodic run: schedule the next run, then call the function.

    When Redis refuses the next run, this one asks rq to run it again later (a returned Retry)
    instead of doing its work: failed, it ended the chain until a worker started again.
    """
    periodic = PeriodicJob(**spec)
    current = get_current_job()
    if current is not None:
        own_slot = int(current.id.rsplit("-", 1)[1])
        # A late run (worker was down or busy) skips the missed slots instead of replaying them.
        next_slot = max(own_slot, slot_at(periodic.interval_seconds)) + 1
        try:
            schedule_run(current.connection, periodic, next_slot)
        except RedisError as exc:
            # Redis away for a moment: rq records the Retry once it is back (still away, the
            # worker stops and `reconcile` schedules the runs when it works again).
            log.warning("periodic %s could not schedule its next run (%s): retried later",
                        current.id, exc)
            return Retry(max=5, interval=SCHEDULE_RETRY_INTERVALS)
    resolve(periodic.func_path)()
    return None


def _scheduled_periodic_jobs(connection: Redis) -> Iterable[tuple[ScheduledJobRegistry, Job]]:
    for name in QUEUES:
        registry = ScheduledJobRegistry(queue=get_queue(connection, name))
        for job_id in registry.get_job_ids():
            if not job_id.startswith(PREFIX + "-"):
                continue
            try:
                yield registry, Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
            except NoSuchJobError:
                registry.remove(job_id)


def _drop_stale(connection: Redis, wanted: dict[str, PeriodicJob]) -> None:
    """Remove scheduled runs of jobs no longer declared, or declared differently."""
    for registry, job in _scheduled_periodic_jobs(connection):
        spec = job.args[0] if job.args else None
        name = job.id[len(PREFIX) + 1:].rsplit("-", 1)[0]
        if name not in wanted or spec != asdict(wanted[name]):
            log.info("unscheduling stale periodic run %s", job.id)
            registry.remove(job, delete_job=True)


def _importable(periodic: PeriodicJob) -> bool:
    try:
        resolve(periodic.func_path)
    except Exception as exc:  # noqa: BLE001  (any import-time failure means "not runnable yet")
        log.error("periodic job %r skipped: cannot import %s: %r", periodic.id,
                  periodic.func_path, exc)
        return False
    return True


def reconcile(connection: Redis, declared: Iterable[PeriodicJob]) -> list[str]:
    """Make rq's schedule match the declared jobs; returns the ids of the next runs."""
    wanted = {p.id: p for p in declared if _importable(p)}
    _drop_stale(connection, wanted)
    next_runs = []
    for periodic in wanted.values():
        slot = slot_at(periodic.interval_seconds) + 1
        if schedule_run(connection, periodic, slot):
            log.info("scheduled periodic job %s", run_id(periodic.id, slot))
        next_runs.append(run_id(periodic.id, slot))
    return next_runs
