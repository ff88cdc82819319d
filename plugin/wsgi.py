"""The WSGI entry point: `gunicorn "plugin.wsgi:app"` (settings from the environment)."""
from __future__ import annotations

from plugin.app import create_app
from plugin.warmup import warm_indexes

app = create_app()
# gunicorn preloads this module (deploy/gunicorn.conf.py), so the warm-up runs once in the master.
warm_indexes(app.extensions["inflow.db"])
