"""Placeholder until written (connect/headers)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Wire this part into the app."""
