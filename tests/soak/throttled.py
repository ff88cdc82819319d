"""host-throttled: a site whose REST API misbehaves mid-burst while another site goes on.

The site's burst is of edits without their comments, so every event re-reads its issue from the
site (a sandbox site in this process, serving each issue's last revision). At 30 % of the burst
the site misbehaves for `--throttle` seconds, a third each: 429 with a Retry-After, 503 with
none, then 30 s per call (the read timeout). Meanwhile a second site, whose events embed their
issues, sends a burst of its own: it must not wait for the first.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from connect.host_client import HostClient
from connect.models import WebhookEvent
from sandbox.site.server import FakeHost
from tests.soak import events, stack
from tests.soak.measure import ReplaySite, Result
from tests.soak.runner import conclude, send, wait_for, when_sent
from tests.soak.sender import Sender

FAULT = "host-throttled"
ISSUE_PATH = "/rest/api/3/issue/"
RETRY_AFTER = 10  # seconds the site asks for while rate-limiting
SLOW_CALL = 30.0  # seconds each call takes while slow
WELL_ISSUES, WELL_SNAPSHOTS = 10, 10


def misbehave(host: FakeHost, seconds: float, log: Callable[[str], None]) -> None:
    """429 with Retry-After, then 503, then slow calls, each for a third of `seconds`."""
    third = seconds / 3
    for status, retry_after in ((429, RETRY_AFTER), (503, None)):
        host.inject(ISSUE_PATH, status, times=10**9, retry_after=retry_after)
        log(f"{FAULT}: the site answers {status} for {third:.0f} s")
        time.sleep(third)
        with host.lock:
            host.injections.clear()
    host.latency = SLOW_CALL
    log(f"{FAULT}: the site takes {SLOW_CALL:.0f} s per call for {third:.0f} s")
    time.sleep(third)
    host.latency = 0.0
    log(f"{FAULT}: the site is well again")


def _well_burst(run: stack.Stack, site: stack.Site, deliveries: list[events.Delivery],
                outcome: set[str], log: Callable[[str], None]) -> threading.Thread:
    """The other site's burst, sent while the first site misbehaves."""
    def go() -> None:
        sender = Sender(run.base_url, site.client_key, site.secret, threads=4)
        started = time.monotonic()
        outcome.update(sender.send_all(deliveries).acknowledged)
        log(f"{FAULT}: the well site's burst sent in {time.monotonic() - started:.0f} s")

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


def well_lag(run: stack.Stack, tenant_id: int) -> float | None:
    """Seconds from the well site's last stored event to its last applied one (None: not all)."""
    with run.db.session() as session:
        waiting, stored, applied = session.execute(select(
            func.count(WebhookEvent.id).filter(WebhookEvent.processed_at.is_(None)),
            func.max(WebhookEvent.received_at), func.max(WebhookEvent.processed_at))
            .where(WebhookEvent.tenant_id == tenant_id)).one()
    return None if waiting or applied is None else (applied - stored).total_seconds()


def run(args: Any, work: Path, log: Callable[[str], None]) -> Result:
    """The throttled site's burst and the well site's, then the tally of both."""
    host = FakeHost(keep_calls=2000).start()
    run = stack.build(FAULT, work)
    install = host.installs["jira"]
    site = run.add_site("site", host.base_url("jira"), install.client_key, install.secret)
    well = run.add_site("well")
    host.load_jira_issues(events.final_issues(args.issues, args.snapshots))
    burst = events.build(args.issues, args.snapshots, run=FAULT, embed=False)
    other = events.build(WELL_ISSUES, WELL_SNAPSHOTS, run=f"{FAULT}-well", skip=args.issues)
    well_acknowledged: set[str] = set()
    try:
        run.start(args.workers, {"INFLOW_APP_KEY": host.app_key})
        sender = Sender(run.base_url, site.client_key, site.secret, threads=args.threads)
        fault = when_sent(sender, 0.3, len(burst), lambda: misbehave(host, args.throttle, log))
        sent_well = when_sent(sender, 0.35, len(burst),
                              lambda: _well_burst(run, well, other, well_acknowledged, log).join())
        outcome = send(FAULT, sender, burst, [fault, sent_well])
        acknowledged = outcome.acknowledged | well_acknowledged
        log(f"{FAULT}: the well site's events applied {well_lag(run, well.tenant_id)} s after "
            "its last was stored (None: not all yet)")
        wait_for(FAULT, run, acknowledged, args.timeout)
        log(f"{FAULT}: in the end the well site's last event was applied "
            f"{well_lag(run, well.tenant_id)} s after its last was stored")
    finally:
        run.close()
    waits = (run.folder / "worker.log").read_text(errors="replace").count("refused a batch")
    log(f"{FAULT}: the site's drain was handed back and scheduled later {waits} times")
    replay_site = ReplaySite(install.client_key, install.secret, host.base_url("jira"),
                             lambda tenant: HostClient.for_tenant(tenant, host.app_key))
    try:
        return conclude(FAULT, run, burst + other, acknowledged, replay_site)
    finally:
        host.stop()
