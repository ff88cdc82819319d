"""The periodic jobs, declared as data; `jobs.scheduling` keeps rq's scheduler in step with it."""
from __future__ import annotations

from jobs.scheduling import PeriodicJob

PERIODIC_JOBS: list[PeriodicJob] = [
    # Outbox relay: enqueues stored webhook events that never reached the queue.
    PeriodicJob("relay", "jobs.pipeline.relay_pending_events", 30),
    # Fans out one deterministic job per tenant that re-syncs recently changed content.
    PeriodicJob("reconcile", "jobs.pipeline.reconcile_all_tenants", 900),
    PeriodicJob("followups", "jobs.pipeline.run_question_followups", 300),
    # Hourly; the job itself decides whether this week's digest is due.
    PeriodicJob("digests", "jobs.pipeline.send_weekly_digests", 3600),
    PeriodicJob("privacy", "jobs.pipeline.run_privacy_reporting", 86400, timeout_seconds=3600),
    PeriodicJob("purge", "jobs.pipeline.purge_uninstalled_tenants", 86400, timeout_seconds=3600),
    # Processed webhook events would otherwise pile up for ever, people's words in their payloads.
    PeriodicJob("events_purge", "jobs.pipeline.purge_old_events", 86400, timeout_seconds=3600),
    # Forge sends no uninstall event: sites that keep refusing the app are marked uninstalled.
    PeriodicJob("forge_presence", "jobs.pipeline.check_forge_installations", 3600),
]
