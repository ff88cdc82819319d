"""Test-local periodic job functions, run by a real worker process."""
from __future__ import annotations

from rq import get_current_job

from jobs.scheduling import PeriodicJob

TICKS_KEY = "tests:runtime:ticks"


def tick() -> None:
    """Record which run this was, so the test sees each run happen."""
    job = get_current_job()
    assert job is not None
    job.connection.rpush(TICKS_KEY, job.id)


def boom() -> None:
    """Always fails: the schedule must go on regardless."""
    raise RuntimeError("boom: periodic job failed on purpose")


PERIODIC_JOBS = [
    PeriodicJob("tick", "tests.runtime.periodic_funcs.tick", 1),
    PeriodicJob("boom", "tests.runtime.periodic_funcs.boom", 1),
]
