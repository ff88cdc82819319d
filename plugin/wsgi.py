"""The WSGI entry point: `plugin.wsgi:app`, served by plugin/runtime/web.py (settings from the environment)."""
from __future__ import annotations

from plugin.app import create_app

app = create_app()
