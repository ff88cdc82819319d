"""`inflow worker` stops when told: SIGTERM or SIGINT is a warm shutdown, then exit 0."""
from __future__ import annotations

import signal

import pytest
from redis import Redis

from bench.common import wait_until
from tests.runtime.helpers import worker_process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_worker_told_to_stop_exits_instead_of_starting_again(sqlite_url: str, redis_url: str,
                                                               signum: int) -> None:
    # rq returns from its loop both when told to stop and when Redis refused a write; only the
    # second may start a new rq worker, so the process must know which one happened.
    with worker_process(sqlite_url, redis_url) as proc:
        redis = Redis.from_url(redis_url)

        def waiting_for_jobs() -> bool:  # idle comes after rq installed its signal handlers
            return any(redis.hget(k, "state") == b"idle" for k in redis.keys("rq:worker:inflow.*"))

        assert wait_until(waiting_for_jobs, 30, interval=0.1), "the worker never waited for jobs"
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 0
