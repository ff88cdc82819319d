"""Registers every view blueprint of the product."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask


def href(url: str | None) -> str:
    """Only http(s) links reach an href; anything else (javascript:, data:) becomes '#'."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    return "#"


def init_app(app: Flask) -> None:
    """Blueprints and product hooks (panels, API, admin, personal pages)."""
    from plugin.api import actions, admin, content, me
    from plugin.views import confluence, jira

    for module in (content, actions, admin, me, jira, confluence):
        app.register_blueprint(module.bp)
    app.jinja_env.add_extension("jinja2.ext.do")
    app.jinja_env.filters["href"] = href
