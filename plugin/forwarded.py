"""The scheme a trusted proxy says the browser used (X-Forwarded-Proto), from FORWARDED_ALLOW_IPS only.

Why: TLS ends at the proxy or tunnel in front, so without it every request would look like plain
http; a header from anyone else is ignored, since any client can send one.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


class TrustedProxies:
    """WSGI middleware: ProxyFix for the scheme, applied only to requests from allowed addresses."""

    def __init__(self, app: Any, allowed: str) -> None:
        names = {name.strip() for name in allowed.split(",") if name.strip()}
        self.app, self.any, self.allowed = app, "*" in names, names
        self.fixed = ProxyFix(app, x_for=0, x_proto=1, x_host=0, x_port=0, x_prefix=0)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.any or environ.get("REMOTE_ADDR") in self.allowed:
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def init_app(app: Flask, allowed: str) -> None:
    """Wrap the app's WSGI callable so every view sees the scheme a trusted proxy reported."""
    app.wsgi_app = TrustedProxies(app.wsgi_app, allowed)  # type: ignore[method-assign]
