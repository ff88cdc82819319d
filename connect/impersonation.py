"""Act as a user: OAuth 2.0 JWT bearer grant (2LOi) for Connect apps, with a token cache."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.auth import AuthBase

from connect.jwt import encode_token

DEFAULT_AUTH_SERVER = "https://oauth-2-authorization-server.services.atlassian.com"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPES = "ACT_AS_USER READ WRITE"
ASSERTION_TTL = 60
# Why a margin: a token that expires while a request is in flight fails for no good reason.
REFRESH_MARGIN = 60


def assertion(oauth_client_id: str, secret: str, base_url: str, account_id: str,
              auth_server: str) -> str:
    """The JWT assertion for the bearer grant, signed with the install's shared secret."""
    now = int(time.time())
    claims = {
        "iss": f"urn:atlassian:connect:clientid:{oauth_client_id}",
        "sub": f"urn:atlassian:connect:useraccountid:{account_id}",
        "tnt": base_url,
        "aud": auth_server,
        "iat": now,
        "exp": now + ASSERTION_TTL,
    }
    return encode_token(claims, secret)


class TokenCache:
    """Access tokens per (tenant, account), reused until shortly before they expire."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], fetch: Callable[[], tuple[str, float]]) -> str:
        """The cached token for key, or a fresh one from fetch() -> (token, expires_in)."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] - REFRESH_MARGIN > time.monotonic():
                return cached[0]
        token, expires_in = fetch()
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + expires_in)
        return token

    def clear(self) -> None:
        """Forget every token (tests, uninstall)."""
        with self._lock:
            self._tokens.clear()


TOKENS = TokenCache()


def request_token(session: requests.Session, tenant: Any, account_id: str,
                  auth_server: str) -> tuple[str, float]:
    """POST the assertion to the authorization server; returns (access_token, expires_in)."""
    signed = assertion(tenant.oauth_client_id, tenant.shared_secret, tenant.base_url,
                       account_id, auth_server)
    response = session.post(f"{auth_server}/oauth2/token", data={
        "grant_type": GRANT_TYPE, "assertion": signed, "scope": SCOPES})
    body = response.json()
    return body["access_token"], float(body.get("expires_in", 900))


class BearerAuth(AuthBase):
    """Puts a (cached, refreshed) user access token on every request."""

    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token()}"
        return request
