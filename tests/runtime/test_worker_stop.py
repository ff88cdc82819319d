"""`inflow worker` stops when told (SIGTERM or SIGINT is a warm shutdown, then exit 0), and
runs below the web processes' CPU priority, with a refresher process (below it) it keeps running."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
from redis import Redis

from bench.common import child_named, wait_until
from jobs import refresher, worker
from jobs.worker import build_worker, worker_connection
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


def test_a_worker_runs_below_the_web_processes_cpu_priority(sqlite_url: str, redis_url: str) -> None:
    # On a host running both, a refresh can wait a moment; an open panel is waited for.
    with worker_process(sqlite_url, redis_url) as proc:
        redis = Redis.from_url(redis_url)
        assert wait_until(lambda: bool(redis.keys("rq:worker:inflow.*")), 30, interval=0.1)
        # (A runner already below it leaves it there: a worker never raises its priority.)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == max(worker.NICENESS, os.getpriority(os.PRIO_PROCESS, 0))
        # Its refresher below it: the events it applies come before the refreshes ranking on them.
        assert wait_until(lambda: _refresher(proc) is not None, 30, interval=0.1), "no refresher process"
        refresher_pid = _refresher(proc)
        assert refresher_pid is not None
        below = min(19, os.getpriority(os.PRIO_PROCESS, proc.pid) + refresher.REFRESH_NICENESS)
        assert wait_until(lambda: os.getpriority(os.PRIO_PROCESS, refresher_pid) == below, 10, interval=0.1)


def _refresher(proc: subprocess.Popen[bytes]) -> int | None:
    return child_named(proc.pid, "inflow-refresher")


def test_the_workers_refresher_process_is_started_again_and_ends_with_the_worker(
        sqlite_url: str, redis_url: str) -> None:
    with worker_process(sqlite_url, redis_url) as proc:
        assert wait_until(lambda: _refresher(proc) is not None, 30, interval=0.1), "no refresher process"
        first = _refresher(proc)
        assert first is not None
        os.kill(first, signal.SIGKILL)  # the kernel's OOM killer, say
        assert wait_until(lambda: _refresher(proc) not in (None, first), 30, interval=0.1), \
            "the worker did not start another refresher"
        second = _refresher(proc)
        assert second is not None
        os.kill(proc.pid, signal.SIGKILL)  # the worker killed with no time to stop its refresher
        assert wait_until(lambda: not _alive(second), 10, interval=0.1), "the refresher outlived its worker"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def test_a_worker_stops_at_once_when_its_command_thread_hears_the_unsubscribe_first(redis_url: str) -> None:
    worker = build_worker(worker_connection(redis_url), name="inflow.test.unsubscribe")
    worker.subscribe()
    pubsub = worker.pubsub
    unsubscribe = pubsub.unsubscribe

    def heard_first(*args: object) -> object:  # the main thread held up between unsubscribe and stop
        sent = unsubscribe(*args)
        assert wait_until(lambda: not pubsub.subscribed, 5, interval=0.01)
        time.sleep(0.1)
        return sent

    pubsub.unsubscribe = heard_first  # type: ignore[method-assign]
    stopping = threading.Thread(target=worker.unsubscribe, daemon=True)
    stopping.start()
    stopping.join(10)  # rq's sleep_time is 60 s: a thread left waiting for a subscription takes that
    assert not stopping.is_alive() and not worker.pubsub_thread.is_alive()
