"""`GET /healthz`: database, Redis and queue depth as JSON; 200 when healthy, else 503."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from jobs.core import QUEUES, get_queue, redis_connection

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


def check_database() -> dict[str, Any]:
    """Whether the database answers a trivial query."""
    try:
        with current_app.extensions["inflow.db"].engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health: database unavailable: %s", exc)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def check_redis(redis_url: str | None) -> dict[str, Any]:
    """Whether Redis answers, with the depth of each queue.

    Without REDIS_URL the web app still works (events wait in the outbox), so that is healthy.
    """
    if not redis_url:
        return {"ok": True, "configured": False}
    try:
        connection = redis_connection(redis_url)
        connection.ping()
        depths = {name: len(get_queue(connection, name)) for name in QUEUES}
    except RedisError as exc:
        log.warning("health: Redis unavailable: %s", exc)
        return {"ok": False, "configured": True, "error": type(exc).__name__}
    return {"ok": True, "configured": True, "queues": depths}


def report_search() -> dict[str, Any]:
    """Each local search shard: readable or not, and how many of its sites have changes to index.

    Reported, not judged: a web process serves stored suggestions while its shard is rebuilt,
    and a machine that runs no worker has nobody to create it.
    """
    from plugin import search
    from plugin.search.indexer import pending
    from plugin.search.shard import ShardUnavailable, shard_at

    settings = search.settings_for_db(current_app.extensions["inflow.db"])
    shards: dict[str, Any] = {}
    for name in settings.shards:
        try:
            identity = shard_at(settings.index_dir, name).reader()[1]
        except ShardUnavailable:
            shards[name] = {"readable": False}
            continue
        try:
            with current_app.extensions["inflow.db"].session() as session:
                behind = len(pending(session, name, identity, limit=1000))
        except SQLAlchemyError:
            behind = None
        shards[name] = {"readable": True, "sites_behind": behind}
    return {"shards": shards}


@bp.get("/healthz")
def healthz() -> Any:
    """The health report; load balancers only need the status code."""
    redis_url = current_app.config.get("REDIS_URL")
    checks = {"database": check_database(), "redis": check_redis(redis_url)}
    healthy = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if healthy else "unavailable", **checks, "search": report_search()}
    return jsonify(body), 200 if healthy else 503


def init_app(app: Flask) -> None:
    """Register the health endpoint."""
    app.register_blueprint(bp)
