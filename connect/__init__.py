"""The Atlassian host protocol. Never imports plugin/ or jobs/."""
from __future__ import annotations

from flask import Flask

from connect import auth, db, descriptor, forge_routes, headers, lifecycle, webhooks


def init_app(app: Flask) -> None:
    """Database, JWT errors, security headers, descriptors, lifecycle and webhook routes."""
    app.extensions["inflow.db"] = db.Database(app.config["DATABASE_URL"])
    auth.init_app(app)
    headers.init_app(app)
    descriptor.init_app(app)
    lifecycle.init_app(app)
    webhooks.init_app(app)
    forge_routes.init_app(app)
