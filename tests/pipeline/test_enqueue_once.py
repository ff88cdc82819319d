"""Two processes enqueueing the same coalesced job at once leave one job waiting, not two."""

from __future__ import annotations

import threading
from typing import Any

from redis import Redis

from jobs import core
from jobs.core import QUEUE_DEFAULT, get_queue, job_status


def _racing(redis_url: str, monkeypatch: Any) -> list[str]:
    """Make the first status read of this process see a world in which another process has not
    enqueued yet, while that other process enqueues right after it: the window of the race."""
    other = Redis.from_url(redis_url)
    real = core._coalesced_id
    decided: list[str] = []
    raced = threading.Event()

    def late(base: str, status: Any, next_status: Any, stamp: int) -> str | None:
        chosen = real(base, status, next_status, stamp)
        if not raced.is_set():  # the other web process takes the same webhook burst meanwhile
            raced.set()
            assert core.enqueue_coalesced(other, "jobs.pipeline.drain_events", base, (1,))
        decided.append(str(chosen))
        return chosen

    monkeypatch.setattr(core, "_coalesced_id", late)
    return decided


def test_a_drain_enqueued_by_another_process_meanwhile_is_not_pushed_again(
    redis_url: str, monkeypatch: Any
) -> None:
    connection = Redis.from_url(redis_url)
    decided = _racing(redis_url, monkeypatch)

    assert core.enqueue_coalesced(connection, "jobs.pipeline.drain_events", "drain-1", (1,))

    # The other's call decided (drain-1) inside this one's first look (drain-1, pushed in vain:
    # the transaction failed); the second look saw the other's job waiting.
    assert decided == ["drain-1", "drain-1", "None"]
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
    connection, other = Redis.from_url(redis_url), Redis.from_url(redis_url)
    real = core._status_of
    raced = threading.Event()

    def late(pipe: Any, job_id: str) -> Any:
        status = real(pipe, job_id)
        if not raced.is_set():
            raced.set()
            assert core.enqueue_unique(other, "jobs.pipeline.drain_events", 3, job_id=job_id)
        return status

    monkeypatch.setattr(core, "_status_of", late)
    assert core.enqueue_unique(connection, "jobs.pipeline.drain_events", 3, job_id="reconcile-3")
    assert get_queue(connection, QUEUE_DEFAULT).job_ids == ["reconcile-3"]
