"""Asking the machine that holds a shard: an rq job on the shard's queue, awaited with a deadline.

A site's writes need no routing (every shard's indexer follows the shared database); only
ranking must run where the site's index is. The caller gives up after `DEADLINE` seconds and
serves what is stored instead: a panel never waits on another machine for long.
"""
from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from plugin.config import Settings

log = logging.getLogger(__name__)

DEADLINE = 2  # seconds (rq waits for results in whole seconds)
QUEUE_PREFIX = "inflow-shard-"


def queue_name(shard: str) -> str:
    """The queue the workers of a shard's machine take its rankings from."""
    return QUEUE_PREFIX + shard


def ask(settings: Settings, shard: str, func: str, *args: Any) -> Any:
    """`func(*args)` run by a worker holding `shard`; its result, or None after the deadline."""
    if not settings.redis_url:
        return None
    from jobs.core import get_queue, redis_connection

    try:
        queue = get_queue(redis_connection(settings.redis_url), queue_name(shard))
        job = queue.enqueue(func, *args, at_front=True, job_timeout=30, result_ttl=60, failure_ttl=300,
                            ttl=DEADLINE * 5)
        result = job.latest_result(timeout=DEADLINE)
    except RedisError as exc:
        log.warning("shard %s could not be asked: %s", shard, exc)
        return None
    if result is None or result.type != result.Type.SUCCESSFUL:
        log.warning("shard %s did not answer %s within %s s", shard, func, DEADLINE)
        return None
    return result.return_value
