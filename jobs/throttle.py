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

from jobs.core import decoded

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


# One refusal episode is one failure: the batches of a site's concurrent drains are refused at the
# same moment, and each counting one would take the back-off to its maximum at once. So a refusal
# while the site's wait runs only lengthens it to a later Retry-After; once the wait is over, a
# refusal is one more failure in a row. A Retry-After is the site's own schedule, not a failure of
# ours: it sets the wait and leaves the back-off where it was.
_RECORD = """
local now, retry_after = tonumber(ARGV[1]), tonumber(ARGV[2])
local ends = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local delay
if retry_after >= 0 then
  delay = math.max(1, retry_after)
  if ends > now + delay then return tostring(ends - now) end
elseif ends > now then
  return tostring(ends - now)
else
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  delay = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ (failures - 1))
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'until', tostring(now + delay))
redis.call('EXPIRE', KEYS[1], math.floor(delay) + tonumber(ARGV[6]))
return tostring(delay)
"""


def record(connection: Redis, tenant_id: int, status: int, retry_after: float | None) -> float:
    """Note the site's refusal and when to try again; returns the delay in seconds from now."""
    found = connection.eval(_RECORD, 1, key(tenant_id), time.time(),
                            -1 if retry_after is None else retry_after, status, FIRST_BACKOFF,
                            MAX_BACKOFF, KEEP_AFTER)
    return float(decoded(found))


def clear(connection: Redis | None, tenant_id: int) -> None:
    """The site answered: forget its wait (best effort: a stale one only shows on the page)."""
    if connection is None:
        return
    with contextlib.suppress(RedisError):
        connection.delete(key(tenant_id))


def current(connection: Redis, tenant_id: int) -> SiteWait | None:
    """The site's wait, or None when its last batch went through."""
    found = {decoded(k): v for k, v in connection.hgetall(key(tenant_id)).items()}
    if "until" not in found:
        return None
    return SiteWait(int(found.get("status", 0)), float(found["until"]),
                    int(found.get("failures", 0)))
