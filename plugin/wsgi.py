"""The WSGI entry point: `gunicorn "plugin.wsgi:app"` (settings from the environment)."""
from __future__ import annotations

from plugin.app import create_app

app = create_app()
