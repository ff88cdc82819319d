"""`inflow status`: queues, workers, scheduled and failed jobs as readable tables."""
from __future__ import annotations

from collections.abc import Sequence

from redis import Redis
from rq import Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from jobs.core import get_queue, worker_queues

MAX_ROWS = 50


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A titled, column-aligned plain-text table ("(none)" when empty)."""
    cells = [[str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    def line(values: Sequence[str]) -> str:
        return "  " + "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    lines = [title, line(headers), *(line(row) for row in cells)]
    if not cells:
        lines.append("  (none)")
    return "\n".join(lines)


def exception_line(exc_string: str | None) -> str:
    """The first line of the exception itself (the line after the traceback's frames)."""
    lines = [line for line in (exc_string or "").splitlines() if line.strip()]
    frames = [i for i, line in enumerate(lines) if line.startswith(" ")]
    start = frames[-1] + 1 if frames and frames[-1] + 1 < len(lines) else 0
    return lines[start][:120] if lines else ""


def _fetch(connection: Redis, job_id: str) -> Job | None:
    jobs = Job.fetch_many([job_id], connection=connection, serializer=JSONSerializer)
    return jobs[0] if jobs else None


def func_label(job: Job) -> str:
    """The function a job runs; for a periodic run, the periodic function, not the wrapper."""
    if job.func_name == "jobs.scheduling.run_periodic" and job.args:
        return f"{job.args[0].get('func_path')} (periodic)"
    return job.func_name or "?"


def queues_table(connection: Redis) -> str:
    rows = []
    for name in worker_queues():
        queue = get_queue(connection, name)
        rows.append((name, len(queue), queue.started_job_registry.count,
                     queue.scheduled_job_registry.count, queue.failed_job_registry.count))
    return table("Queues", ("queue", "queued", "started", "scheduled", "failed"), rows)


def workers_table(connection: Redis) -> str:
    rows = []
    for worker in Worker.all(connection=connection, serializer=JSONSerializer):
        rows.append((worker.name, worker.get_state(), worker.get_current_job_id() or "-",
                     ",".join(worker.queue_names())))
    return table("Workers", ("name", "state", "current job", "queues"), rows)


def scheduled_table(connection: Redis) -> str:
    rows = []
    for name in worker_queues():
        registry = ScheduledJobRegistry(queue=get_queue(connection, name))
        for job_id in registry.get_job_ids()[:MAX_ROWS]:
            when = registry.get_scheduled_time(job_id)
            rows.append((job_id, when.strftime("%Y-%m-%d %H:%M:%S UTC"), name))
    rows.sort(key=lambda row: row[1])
    return table("Scheduled jobs", ("id", "when", "queue"), rows)


def failed_table(connection: Redis) -> str:
    rows = []
    for name in worker_queues():
        registry = FailedJobRegistry(queue=get_queue(connection, name))
        for job_id in registry.get_job_ids(desc=True)[:MAX_ROWS]:
            job = _fetch(connection, job_id)
            if job is None:
                continue
            result = job.latest_result()
            exc_string = result.exc_string if result else None
            rows.append((job_id, func_label(job), exception_line(exc_string)))
    return table("Failed jobs", ("id", "func", "exception"), rows)


def render_status(connection: Redis) -> str:
    """Every section of the status report."""
    sections = (queues_table, workers_table, scheduled_table, failed_table)
    return "\n\n".join(section(connection) for section in sections)


def print_status(redis_url: str) -> int:
    """Print the status of the rq side of Inflow at `redis_url`."""
    connection = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)
    try:
        print(f"Redis {redis_url}\n")
        print(render_status(connection))
    finally:
        connection.close()
    return 0
