"""Jobs the Redis-full worker test enqueues by name (a worker process imports them)."""
from __future__ import annotations

import os

from redis import Redis


def fill_redis() -> None:
    """Make Redis full while this job runs: rq's record of its end is then refused."""
    connection = Redis.from_url(os.environ["REDIS_URL"])
    connection.config_set("maxmemory-policy", "noeviction")
    connection.config_set("maxmemory", str(int(connection.info("memory")["used_memory"]) // 2))


def note_done(key: str) -> None:
    """Leave a mark the test can see."""
    Redis.from_url(os.environ["REDIS_URL"]).set(key, "1")
