"""A worker's refresher process: stale stored suggestions are refreshed beside the worker's jobs.

A drain waits on its site (a re-read takes 100-300 ms on Atlassian Cloud) while it holds the
worker's one job thread, and a steady stream of webhooks keeps that thread draining: with the
refresh queued behind, a comment's suggestions were fresh half a minute after it (the traffic
bench, one worker). Refreshing ranks on the CPU while a drain waits on the network, so each worker
also runs this loop. It takes due items from the same due sets as the refresh jobs, under the same
leases, so both can work on one site at once without refreshing an item twice.

It runs in a process of its own, started and watched by the worker: ranking is Python on the CPU,
and in the worker's process it shared one interpreter lock with the drains, the re-reads and the
warming, so a worker used one core however many the host had (the traffic bench's burst: the
worker at 97 % of a core while the other stood half idle).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading

from redis import Redis
from redis.exceptions import RedisError

from jobs.core import due_keys, redis_connection, wait_for_due

log = logging.getLogger(__name__)

IDLE_SECONDS = 0.25  # between two looks at the due sets when none had anything due
RESTART_SECONDS = 1.0  # before starting another refresher after one ended unasked
STOP_SECONDS = 20.0  # a refresh in progress finishes; one stuck that long is killed
REFRESH_NICENESS = 10  # added to its worker's (see `main`)


def run(connection: Redis, stop: threading.Event) -> None:
    """Refresh every site's due items until `stop`, the sites in turn."""
    from jobs import pipeline

    failures = 0
    while not stop.is_set():
        try:
            keys = due_keys(connection, pipeline.REFRESH_PREFIX)
            for key in keys:
                if stop.is_set():
                    return
                # No continuation job when it gives way: this loop comes back to the due sets itself.
                pipeline.refresh_due(connection, int(key.removeprefix(pipeline.REFRESH_PREFIX)))
            failures = 0
        except Exception:  # Redis or the database away for a moment: try again shortly
            failures += 1
            log.exception("refreshing stored suggestions failed (%d in a row)", failures)
            keys = []
        if failures:
            stop.wait(min(30.0, IDLE_SECONDS * 2 ** failures))
        elif not keys:
            _idle(connection, stop)


def _idle(connection: Redis, stop: threading.Event) -> None:
    """Until members are marked due (or IDLE_SECONDS); Redis away: a plain wait, the loop says so."""
    try:
        wait_for_due(connection, IDLE_SECONDS)
    except RedisError:
        stop.wait(IDLE_SECONDS)


def start(redis_url: str, stop: threading.Event) -> threading.Thread:
    """Run the worker's refresher process until `stop`, starting another if one ends unasked."""
    thread = threading.Thread(target=_supervise, args=(redis_url, stop), name="inflow-refresher", daemon=True)
    thread.start()
    return thread


def _supervise(redis_url: str, stop: threading.Event) -> None:
    # Spawned, not forked: the worker already runs threads (the indexer's) and holds connections.
    context = multiprocessing.get_context("spawn")
    while not stop.is_set():
        process = context.Process(target=main, args=(redis_url, os.getpid()), name="inflow-refresher")
        try:
            process.start()
        except OSError:  # no memory or processes left for it now: the refresh jobs go on meanwhile
            log.exception("could not start the refresher process")
            stop.wait(RESTART_SECONDS * 10)
            continue
        while process.is_alive() and not stop.wait(1.0):
            pass
        if stop.is_set():
            _end(process)
            return
        log.warning("the refresher process ended (exit code %s): starting another", process.exitcode)
        stop.wait(RESTART_SECONDS)


def _end(process: multiprocessing.process.BaseProcess) -> None:
    """Stop the refresher: it finishes the item in hand (SIGTERM), or is killed after STOP_SECONDS."""
    process.terminate()
    process.join(STOP_SECONDS)
    if process.is_alive():
        process.kill()
        process.join()


def main(redis_url: str, parent: int) -> None:
    """The refresher process: refresh until SIGTERM or SIGINT, or until its worker is gone."""
    from setproctitle import setproctitle

    from plugin.config import Settings
    from plugin.runtime_cli import setup_logging

    setproctitle("inflow-refresher")
    # Below its worker, which is below the web processes (`jobs.worker.NICENESS`): the drains
    # that apply events come before the refreshes that rank on what they store, as panel views
    # and webhook intake come before both. On an idle host it runs at full speed all the same.
    os.nice(REFRESH_NICENESS)
    setup_logging(Settings.from_env())
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=_orphaned, args=(parent, stop), name="inflow-parent", daemon=True).start()
    run(redis_connection(redis_url), stop)


def _orphaned(parent: int, stop: threading.Event) -> None:
    """Stop once the worker that started this process is gone (killed, say, with no time to stop it)."""
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()
