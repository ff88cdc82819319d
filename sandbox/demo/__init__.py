"""`inflow demo` and its /demo pages: Inflow installed into the sandbox site (sandbox/site/).

The app registers these pages only when INFLOW_SANDBOX_URL is set, which `inflow demo` does for
its own processes; a deployment has no /demo.
"""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask, sandbox_url: str) -> None:
    """Serve /demo for the sandbox site at `sandbox_url`."""
    from sandbox.demo import views
    from sandbox.demo.site_client import SiteClient

    app.extensions[views.SITE_KEY] = SiteClient(sandbox_url)
    app.register_blueprint(views.bp)
    # The frames load Atlassian's all.js from here, not its CDN: the demo works offline.
    app.jinja_env.globals["connect_js"] = views.ALL_JS_PATH
