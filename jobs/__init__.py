"""rq jobs and worker wiring."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Remember where Redis is; nothing connects at start-up."""
    app.extensions["inflow.redis_url"] = app.config.get("REDIS_URL")
