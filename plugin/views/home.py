"""`GET /`: what this server is and where its install and operations endpoints are."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template

from connect.forge import forge_settings

bp = Blueprint("home", __name__)


@bp.get("/")
def home() -> Any:
    """A plain page for whoever opens the server's address (no host, no token)."""
    return render_template("home.html", base_url=current_app.config["INFLOW_BASE_URL"].rstrip("/"),
                           demo="demo" in current_app.blueprints, forge_app_id=forge_settings(current_app)[1])
