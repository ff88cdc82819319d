"""A worker's refresher thread: stale stored suggestions are refreshed beside the worker's jobs.

A drain waits on its site (a re-read takes 100-300 ms on Atlassian Cloud) while it holds the
worker's one job thread, and a steady stream of webhooks keeps that thread draining: with the
refresh queued behind, a comment's suggestions were fresh half a minute after it (the traffic
bench, one worker). Refreshing ranks on the CPU while a drain waits on the network, so each worker
process also runs this thread. It takes due items from the same due sets as the refresh jobs,
under the same leases, so both can work on one site at once without refreshing an item twice.
"""
from __future__ import annotations

import logging
import threading

from redis import Redis

from jobs.core import due_keys

log = logging.getLogger(__name__)

IDLE_SECONDS = 0.25  # between two looks at the due sets when none had anything due


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
                # No continuation job when it gives way: this thread comes back to the due sets itself.
                pipeline.refresh_due(connection, int(key.removeprefix(pipeline.REFRESH_PREFIX)))
            failures = 0
        except Exception:  # Redis or the database away for a moment: try again shortly
            failures += 1
            log.exception("refreshing stored suggestions failed (%d in a row)", failures)
            keys = []
        if not keys:
            stop.wait(min(30.0, IDLE_SECONDS * 2 ** failures))


def start(connection: Redis, stop: threading.Event) -> threading.Thread:
    """The process's refresher thread (a daemon: it stops with the process or at `stop`)."""
    thread = threading.Thread(target=run, args=(connection, stop), name="inflow-refresher", daemon=True)
    thread.start()
    return thread
