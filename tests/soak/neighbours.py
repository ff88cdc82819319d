"""noisy-neighbour: one site's burst drains while a quiet site's edits must stay fresh.

The noisy site's whole burst is stored before any worker runs (a backlog, as a burst of 100,000
events or a backfill leaves one); as the workers start on it, the quiet site edits its own issues
one at a time, at a steady pace, in order (each edit a newer revision).
The quiet site's freshness is measured per edit: from storage to its item's stored suggestions
written again (`checks.fresh_seconds`). Target: p95 under 3 s while the noisy backlog drains.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.soak import checks, events, stack
from tests.soak.measure import Result
from tests.soak.runner import conclude, send, wait_for
from tests.soak.sender import Sender

FAULT = "noisy-neighbour"
QUIET_SNAPSHOTS = 4  # revisions per quiet issue
QUIET_PACE = 1.0  # seconds between two quiet edits
TARGET_P95 = 3.0


def _quietly(sender: Sender, deliveries: list[events.Delivery], run: stack.Stack,
             noisy_id: int, log: Callable[[str], None]) -> threading.Thread:
    """Send the quiet site's edits one by one, at QUIET_PACE."""
    def go() -> None:
        log(f"{FAULT}: quiet edits start; noisy backlog {checks.unprocessed(run.db, noisy_id)}")
        for delivery in deliveries:
            sender.deliver(delivery)
            time.sleep(QUIET_PACE)
        log(f"{FAULT}: quiet edits done; noisy backlog {checks.unprocessed(run.db, noisy_id)}")

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


def run(args: Any, work: Path, log: Callable[[str], None]) -> Result:
    """The two sites' bursts, then the tally of both and the quiet site's freshness."""
    run = stack.build(FAULT, work)
    checks.install_suggestion_audit(run.db)
    noisy, quiet = run.add_site("noisy"), run.add_site("quiet")
    burst = events.build(args.issues, args.snapshots, run=f"{FAULT}-noisy")
    calm = events.build(max(1, args.quiet // QUIET_SNAPSHOTS), QUIET_SNAPSHOTS,
                        run=f"{FAULT}-quiet", seed=None, skip=args.issues)
    try:
        run.start_web()
        loud = Sender(run.base_url, noisy.client_key, noisy.secret, threads=args.threads)
        outcome = send(FAULT, loud, burst, [])
        run.start_workers(args.workers)
        soft = Sender(run.base_url, quiet.client_key, quiet.secret, threads=1)
        _quietly(soft, calm, run, noisy.tenant_id, log).join()
        acknowledged = outcome.acknowledged | soft.outcome.acknowledged
        wait_for(FAULT, run, acknowledged, args.timeout)
        fresh = checks.fresh_seconds(run.db, quiet.tenant_id)
    finally:
        run.close()
    result = conclude(FAULT, run, burst + calm, acknowledged)
    p95 = checks.p95(fresh)
    log(f"{FAULT}: quiet site fresh over {len(fresh)} edits: p50 "
        f"{sorted(fresh)[len(fresh) // 2]:.2f} s, p95 {p95:.2f} s, max {max(fresh):.2f} s")
    result.lines.append(f"soak {FAULT}: quiet site fresh p95 {p95:.1f} s")
    result.healthy &= p95 < TARGET_P95
    return result
