"""X-Forwarded-Proto counts only from the proxies FORWARDED_ALLOW_IPS names."""
from __future__ import annotations

from typing import Any

from werkzeug.test import Client

from plugin.forwarded import TrustedProxies


def scheme_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgi.url_scheme"].encode()]


def scheme(allowed: str, remote: str, proto: str | None = "https") -> str:
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    client = Client(TrustedProxies(scheme_app, allowed))
    return client.get("/", headers=headers, environ_base={"REMOTE_ADDR": remote}).get_data(as_text=True)


def test_a_listed_proxy_sets_the_scheme() -> None:
    assert scheme("127.0.0.1,::1", "127.0.0.1") == "https"
    assert scheme("127.0.0.1,::1", "::1") == "https"
    assert scheme("*", "203.0.113.9") == "https"


def test_anyone_else_is_ignored() -> None:
    assert scheme("127.0.0.1,::1", "203.0.113.9") == "http"
    assert scheme("", "127.0.0.1") == "http"


def test_no_header_keeps_the_scheme() -> None:
    assert scheme("127.0.0.1", "127.0.0.1", proto=None) == "http"
