"""What every fault's run shares: the log, the burst with its faults, the wait, the conclusion."""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from tests.soak import checks, measure, stack
from tests.soak.measure import Result
from tests.soak.sender import Outcome, Sender


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def when_sent(sender: Sender, share: float, total: int, action: Callable[[], None]) -> threading.Thread:
    """Run `action` in the background once `share` of the deliveries have finished."""
    def wait_then_act() -> None:
        while sender.done < share * total:
            time.sleep(0.05)
        action()

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def send(fault: str, sender: Sender, deliveries: list, faults: list[threading.Thread]) -> Outcome:
    """Send the burst (faults strike meanwhile) and log what the sender saw."""
    started = time.monotonic()
    outcome = sender.send_all(deliveries)
    for thread in faults:
        thread.join()
    log(f"{fault}: sent in {time.monotonic() - started:.0f} s, statuses "
        f"{dict(outcome.statuses)}, gave up on {len(outcome.given_up)}")
    return outcome


def wait_for(fault: str, run: stack.Stack, acknowledged: set[str], timeout: float) -> None:
    """Wait until every acknowledged event is processed and the index has caught up."""
    waited = measure.wait_processed(run.db, acknowledged, timeout)
    restarts = run.workers.restarts if run.workers else 0
    log(f"{fault}: processing finished {waited:.0f} s after the burst (worker restarts {restarts})")
    deadline = time.monotonic() + 120
    while checks.index_converged(run.db, run.index_dir) and time.monotonic() < deadline:
        time.sleep(2)


def conclude(fault: str, run: stack.Stack, deliveries: list, acknowledged: set[str],
             site: measure.ReplaySite | None = None, strict_index: bool = False) -> Result:
    """The tally, the index check, and the logged notes."""
    tally = measure.tally(run.db, deliveries, acknowledged, site)
    index = checks.index_converged(run.db, run.index_dir)
    run.db.dispose()
    for note in tally.notes:
        log(f"{fault}: {note}")
    log(f"{fault}: state {'equals' if tally.state_matches else 'DIFFERS FROM'} the clean replay")
    log(f"{fault}: index {'converged to the database' if not index else f'DIFFERS: {index[:5]}'}")
    healthy = tally.lost == 0 and tally.duplicated == 0 and tally.state_matches
    return Result(tally, healthy and not (strict_index and index), [])
