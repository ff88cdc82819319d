"""Two processes enqueueing the same coalesced job at once leave one job waiting, not two."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from redis import Redis

from jobs import core
from jobs.core import QUEUE_DEFAULT, get_queue, job_status


def _racing(redis_url: str, monkeypatch: Any, enqueue: Callable[[Redis, str], bool]) -> threading.Event:
    """Let another process enqueue the job just after this one read its status under WATCH
    (before it pushes): the window of the race."""
    other = Redis.from_url(redis_url)
    real = core._status_of
    raced = threading.Event()

    def late(pipe: Any, job_id: str) -> Any:
        status = real(pipe, job_id)
        if getattr(pipe, "watching", False) and not raced.is_set():
            raced.set()  # the other web process takes the same webhook burst meanwhile
            assert enqueue(other, job_id)
        return status

    monkeypatch.setattr(core, "_status_of", late)
    return raced


def test_a_drain_enqueued_by_another_process_meanwhile_is_not_pushed_again(
    redis_url: str, monkeypatch: Any
) -> None:
    connection = Redis.from_url(redis_url)
    raced = _racing(redis_url, monkeypatch,
                    lambda other, job_id: core.enqueue_coalesced(other, "jobs.pipeline.drain_events", job_id, (1,)))

    assert core.enqueue_coalesced(connection, "jobs.pipeline.drain_events", "drain-1", (1,))

    assert raced.is_set()  # the other process did enqueue inside the window
    assert get_queue(connection, QUEUE_DEFAULT).job_ids == ["drain-1"]
    assert job_status(connection, "drain-1") == "queued"


def test_many_threads_enqueueing_one_drain_push_it_once(redis_url: str) -> None:
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def enqueue() -> None:
        connection = Redis.from_url(redis_url)
        barrier.wait()
        results.append(core.enqueue_coalesced(connection, "jobs.pipeline.drain_events", "drain-7", (7,)))

    threads = [threading.Thread(target=enqueue) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert results == [True] * 8
    assert get_queue(Redis.from_url(redis_url), QUEUE_DEFAULT).job_ids == ["drain-7"]


def test_a_unique_job_enqueued_meanwhile_is_not_pushed_again(redis_url: str, monkeypatch: Any) -> None:
    connection = Redis.from_url(redis_url)
    raced = _racing(redis_url, monkeypatch,
                    lambda other, job_id: core.enqueue_unique(other, "jobs.pipeline.drain_events", 3, job_id=job_id))

    assert core.enqueue_unique(connection, "jobs.pipeline.drain_events", 3, job_id="reconcile-3")

    assert raced.is_set()
    assert get_queue(connection, QUEUE_DEFAULT).job_ids == ["reconcile-3"]
