"""Registers every view blueprint of the product."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Blueprints and product hooks (panels, API, admin, personal pages)."""
