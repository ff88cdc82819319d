"""A serving process following a backfill: how long until its index holds every stored item.

Run as `python -m bench.follow URL TENANT_ID COUNT`: does what a web worker's background thread
does (plugin.warmup: look for committed index changes every INFLOW_INDEX_FOLLOW_SECONDS and apply
them) until the tenant's index holds COUNT items, then prints one JSON object: the wall-clock
moment it got there (epoch seconds, comparable across processes), its CPU seconds and syncs.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.common import current_rss_mb

READY = "ready"


def follow(url: str, tenant_id: int, count: int) -> dict[str, Any]:
    """Apply changes as a web worker would until the tenant's index holds `count` items."""
    from bench.seed import open_database
    from plugin.matching.index import tenant_index
    from plugin.warmup import follow_seconds, sync_changed

    db = open_database(url, create=False)
    interval, seen, syncs = follow_seconds() or 2.0, {}, 0
    # A web worker is running before a backfill starts: its start-up is not part of what is timed.
    print(READY, flush=True)
    cpu0 = time.process_time()
    while True:
        syncs += sync_changed(db, seen)
        with db.session() as session:
            if tenant_index(session, tenant_id).count >= count:
                break
        time.sleep(interval)
    return {"done_at": time.time(), "cpu_s": time.process_time() - cpu0, "syncs": syncs,
            "interval": interval, "rss_mb": current_rss_mb()}


class Follower:
    """The follower as a child process, returned once it is up; `result()` waits for its report."""

    def __init__(self, url: str, tenant_id: int, count: int) -> None:
        from bench.servers import bench_env

        self.proc = subprocess.Popen([sys.executable, "-m", "bench.follow", url, str(tenant_id), str(count)],
                                     env=bench_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        # Its imports (about 2 s of CPU) would otherwise compete with the first pages stored.
        if self.proc.stdout is None or self.proc.stdout.readline().strip() != READY:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise RuntimeError(f"the following process did not start: {err[-2000:]}")

    def result(self, timeout: float = 900) -> dict[str, Any]:
        """Its report; RuntimeError if it failed or did not get there in `timeout` seconds."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError(f"the following process did not see every item within {timeout:.0f} s")
        if self.proc.returncode != 0:
            raise RuntimeError(f"the following process failed: {err[-2000:]}")
        return json.loads(out.strip().splitlines()[-1])

    def stop(self) -> None:
        """Kill it if it is still running (the measurement failed elsewhere)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def main(argv: list[str]) -> int:
    url, tenant_id, count = argv[0], int(argv[1]), int(argv[2])
    print(json.dumps(follow(url, tenant_id, count)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
