"""Signing helpers for tests: tokens as Jira/Confluence would send them."""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import jwt as pyjwt

from connect.jwt import CONTEXT_QSH, parse_query, query_string_hash


def host_token(client_key: str, secret: str, method: str, url: str, sub: str | None = "user-1",
               ttl: int = 180, context: bool = False, **extra: Any) -> str:
    """A HS256 token a host would put on a request to the app (qsh for that exact URL)."""
    now = int(time.time())
    parts = urlsplit(url)
    qsh = CONTEXT_QSH if context else query_string_hash(method, parts.path, parse_query(parts.query))
    claims: dict[str, Any] = {"iss": client_key, "iat": now, "exp": now + ttl, "qsh": qsh}
    if sub is not None:
        claims["sub"] = sub
    claims.update(extra)
    return pyjwt.encode(claims, secret, algorithm="HS256")


def signed_url(client_key: str, secret: str, method: str, url: str, **kw: Any) -> str:
    """The URL with `jwt=` appended, as an iframe src is signed."""
    token = host_token(client_key, secret, method, url, **kw)
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}jwt={token}"
