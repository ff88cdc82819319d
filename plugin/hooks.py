"""Product hooks registered with connect/ at start-up (being written)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the webhook event handler with connect/."""
