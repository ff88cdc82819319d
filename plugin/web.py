"""Registers every view blueprint of the product."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import Flask
from redis import Redis

from connect.headers import ALL_JS_URL
from plugin.matching.experts import work_groups
from plugin.services.people import UNKNOWN
from plugin.services.permissions import SharedAnswers


def href(url: str | None) -> str:
    """Only http(s) links reach an href; anything else (javascript:, data:) becomes '#'."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    return "#"


def when(value: str | None) -> str:
    """An ISO timestamp as people read it: '2026-11-25 20:31 UTC' (unreadable values as given)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value or "")
    return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.utcoffset() is not None else "")


def number(value: float | None) -> str:
    """A number as people read it, thousands separated: 4649 -> '4,649' (None -> '0')."""
    return f"{value or 0:,}"


def init_app(app: Flask) -> None:
    """Blueprints and product hooks (panels, API, admin, personal pages)."""
    from plugin.api import actions, admin, backfill, content, me, rovo
    from plugin.views import confluence, home, jira

    for module in (content, actions, admin, backfill, me, rovo, jira, confluence, home):
        app.register_blueprint(module.bp)
    url = app.extensions.get("inflow.redis_url")
    if url:  # the viewers' permission answers, shared by the web processes
        # Short timeouts: a Redis that hangs must cost a view a moment, then the host is asked.
        connection = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        app.extensions["inflow.answers"] = SharedAnswers(connection)
    app.jinja_env.add_extension("jinja2.ext.do")
    app.jinja_env.filters["href"] = href
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["number"] = number
    app.jinja_env.globals["unknown_user"] = UNKNOWN
    app.jinja_env.globals["connect_js"] = ALL_JS_URL  # Atlassian's all.js (`inflow demo` serves its own)
    app.jinja_env.globals["work_groups"] = work_groups  # an expert's evidence grouped by what they did
