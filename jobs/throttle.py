"""A site that refuses or fails our calls: its drain waits, and the wait is shown to its admins.

A site answering 429, 502, 503 or 504, or not answering in time, is unwell as a whole, not one of
its items: every event of the batch would fail the same way. So the batch is handed back untried
and the site's drain is scheduled for later (its Retry-After, else a back-off that doubles with
each failure in a row), rather than each event retrying on its own and asking the site again.
The wait lives in Redis beside the drain it delays; the admin page reads it from there.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

# Statuses that say the site (not one item) cannot answer now; 0 is "unreachable or too slow".
SITE_STATUSES = frozenset({0, 429, 502, 503, 504})
FIRST_BACKOFF = 5.0  # seconds, doubled with each failure in a row
MAX_BACKOFF = 300.0
KEEP_AFTER = 3600  # seconds a wait is remembered after its end (then the site is presumed well)
PREFIX = "inflow:site-wait:"


@dataclass(frozen=True)
class SiteWait:
    """Why a site's drain waits and until when (epoch seconds)."""

    status: int
    until: float
    failures: int

    @property
    def reason(self) -> str:
        """The wait in words an admin understands, after the product's name."""
        if self.status == 429:
            return "is rate-limiting Inflow on this site"
        if self.status == 0:
            return "is not answering Inflow in time on this site"
        return f"is failing Inflow's calls on this site (HTTP {self.status})"


def key(tenant_id: int) -> str:
    """The Redis hash of a tenant's site wait."""
    return f"{PREFIX}{tenant_id}"


def delay_for(failures: int, retry_after: float | None) -> float:
    """How long the drain waits: the site's own Retry-After, else the back-off for `failures`."""
    if retry_after is not None:
        return max(1.0, retry_after)
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(0, failures - 1))


def record(connection: Redis, tenant_id: int, status: int, retry_after: float | None) -> float:
    """Note one more failure in a row and when to try again; returns the delay in seconds."""
    failures = int(connection.hincrby(key(tenant_id), "failures", 1))
    delay = delay_for(failures, retry_after)
    with connection.pipeline(transaction=False) as pipe:
        pipe.hset(key(tenant_id), mapping={"status": status, "until": time.time() + delay})
        pipe.expire(key(tenant_id), int(delay) + KEEP_AFTER)
        pipe.execute()
    return delay


def clear(connection: Redis | None, tenant_id: int) -> None:
    """The site answered: forget its wait (best effort: a stale one only shows on the page)."""
    if connection is None:
        return
    with contextlib.suppress(RedisError):
        connection.delete(key(tenant_id))


def current(connection: Redis, tenant_id: int) -> SiteWait | None:
    """The site's wait, or None when its last batch went through."""
    found = {k.decode() if isinstance(k, bytes) else k: v
             for k, v in connection.hgetall(key(tenant_id)).items()}
    if "until" not in found:
        return None
    return SiteWait(int(found.get("status", 0)), float(found["until"]),
                    int(found.get("failures", 1)))
