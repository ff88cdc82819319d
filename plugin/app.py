"""The app factory: defaults, config, then each subsystem wires itself."""
from __future__ import annotations

from typing import Any

from flask import Flask

from plugin.config import PROJECT_ROOT, Settings


def create_app(config: dict[str, Any] | None = None, settings: Settings | None = None) -> Flask:
    """Build the Flask app; `config` overrides (tests), `settings` defaults to the environment."""
    settings = settings or Settings.from_env()
    app = Flask(
        "inflow",
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "plugin" / "static"),
        static_url_path="/static",
    )
    app.config.update(settings.flask_config())
    app.config.update(config or {})
    app.json.sort_keys = False  # type: ignore[attr-defined]

    import connect
    import jobs
    import plugin.health
    import plugin.hooks
    import plugin.metrics
    import plugin.models  # noqa: F401  (one metadata for every table)
    import plugin.openapi
    import plugin.web

    connect.init_app(app)
    jobs.init_app(app)
    plugin.hooks.init_app(app)
    plugin.web.init_app(app)
    plugin.metrics.init_app(app)  # GET /metrics, request timing
    plugin.health.init_app(app)
    plugin.openapi.init_app(app)  # GET /api/openapi.json
    if settings.sandbox_url:  # only under `inflow demo`: a deployment never has a sandbox
        import sandbox.demo

        sandbox.demo.init_app(app, settings.sandbox_url)
    import plugin.forwarded
    import plugin.views.front

    # Every view Flask renders sees the scheme a trusted proxy reported; the cached views in
    # front of it build no absolute URL, so their answers do not depend on it.
    plugin.forwarded.init_app(app, settings.forwarded_allow_ips)
    plugin.views.front.init_app(app)  # last: it answers only for the hooks it knows
    return app
