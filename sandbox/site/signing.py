"""What the sandbox signs as Atlassian does: installs (RS256), iframe URLs, context tokens (HS256).

Installs are signed with an RSA key whose public half the site publishes by `kid`, as
connect-install-keys.atlassian.com does; Inflow fetches it from INFLOW_INSTALL_KEYS_URL. Iframe
URLs carry a JWT whose qsh covers that exact URL; the tokens all.js hands the iframe for its own
calls carry `qsh: context-qsh`. Both are HS256 with the install's shared secret and name the
viewer in `sub`.
"""
from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connect.jwt import CONTEXT_QSH, parse_query, query_string_hash

INSTALL_TTL = 180
IFRAME_TTL = 180  # Jira signs iframe URLs for three minutes
CONTEXT_TTL = 900  # AP.context.getToken() tokens live fifteen minutes


class InstallSigner:
    """One RSA key and its published id, as Atlassian rotates them (one per site process here)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = str(uuid.uuid4())

    def public_pem(self, kid: str) -> bytes | None:
        """The PEM the keys service answers for `kid` (None: 404)."""
        if kid != self.kid:
            return None
        return self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)

    def lifecycle_token(self, client_key: str, app_base_url: str, path: str) -> str:
        """The JWT of a signed install or uninstall: audience the app, qsh of POST on `path`."""
        now = int(time.time())
        claims = {"iss": client_key, "aud": app_base_url.rstrip("/"), "iat": now,
                  "exp": now + INSTALL_TTL, "qsh": query_string_hash("POST", path, [])}
        return pyjwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


def iframe_token(client_key: str, secret: str, path_and_query: str, viewer: str | None) -> str:
    """The `jwt` of an iframe URL: qsh of GET on that path (relative to the app's base URL)."""
    parts = urlsplit(path_and_query)
    qsh = query_string_hash("GET", parts.path, parse_query(parts.query))
    return _user_token(client_key, secret, qsh, viewer, IFRAME_TTL)


def context_token(client_key: str, secret: str, viewer: str | None) -> str:
    """A token all.js hands the iframe for its calls back to the app (`context-qsh`)."""
    return _user_token(client_key, secret, CONTEXT_QSH, viewer, CONTEXT_TTL)


def _user_token(client_key: str, secret: str, qsh: str, viewer: str | None, ttl: int) -> str:
    now = int(time.time())
    claims: dict[str, object] = {"iss": client_key, "iat": now, "exp": now + ttl, "qsh": qsh}
    if viewer:  # anonymous viewers get no sub, as on a real site
        claims["sub"] = viewer
    return pyjwt.encode(claims, secret, algorithm="HS256")


def signed_path(client_key: str, secret: str, path_and_query: str, viewer: str | None) -> str:
    """The iframe's path and query with `jwt=` appended, as the host puts it in the src."""
    token = iframe_token(client_key, secret, path_and_query, viewer)
    return f"{path_and_query}{'&' if '?' in path_and_query else '?'}jwt={token}"
