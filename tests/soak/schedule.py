"""The soak workers' periodic jobs: only the outbox relay (the others need a real Atlassian site)."""
from __future__ import annotations

from jobs.scheduling import PeriodicJob

# Production relays every 30 s; 10 s keeps a soak run short without changing what is exercised.
PERIODIC_JOBS: list[PeriodicJob] = [
    PeriodicJob("relay", "jobs.pipeline.relay_pending_events", 10),
]
