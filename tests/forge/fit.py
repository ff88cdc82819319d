"""Test-side Forge: an RSA key served as a JWKS over real HTTP, and FITs signed like Forge's."""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = "ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a"
ISSUER = "forge/invocation-token"


class SigningKey:
    """One RSA key pair with a kid, as Atlassian publishes them."""

    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or f"forge/{uuid.uuid4().hex[:12]}"
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        public = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "alg": "RS256", "use": "sig"}


class JWKSServer:
    """A real threaded HTTP server on loopback serving the published keys; counts fetches."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.fetches += 1
                server.paths.append(self.path)
                body = json.dumps({"keys": [k.jwk() for k in server.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def start(self) -> JWKSServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def fit_claims(installation_id: str, cloud_id: str, product: str = "jira",
               principal: str | None = "user-1", site_url: str | None = None,
               ttl: int = 300, ui: bool = True, api_host: str = "https://api.atlassian.com",
               **overrides: Any) -> dict[str, Any]:
    """FIT claims in the layout Forge sends (app.*, context.* for UI calls, principal)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER, "aud": APP_ID, "iat": now, "nbf": now, "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "app": {"id": APP_ID, "version": "3", "installationId": installation_id,
                "apiBaseUrl": f"{api_host}/ex/{product}/{cloud_id}",
                "environment": {"type": "DEVELOPMENT", "id": str(uuid.uuid4())},
                # A UI module's call names that module; a trigger's, the endpoint Forge calls.
                "module": ({"type": "xen:macro", "key": "inflow-issue-panel"} if ui
                           else {"type": "core:endpoint", "key": "inflow-events"})},
    }
    if ui:
        claims["context"] = {"cloudId": cloud_id, "moduleKey": "inflow-issue-panel",
                             "siteUrl": site_url or f"https://{cloud_id[:8]}.atlassian.net"}
    if principal:
        claims["principal"] = principal
    claims.update(overrides)
    return claims


def sign(claims: dict[str, Any], key: SigningKey, kid: str | None = None,
         algorithm: str = "RS256") -> str:
    """Sign claims as Forge does (RS256 with the key's kid)."""
    return pyjwt.encode(claims, key.private, algorithm=algorithm,
                        headers={"kid": kid or key.kid})


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """An `alg: none` token (what an attacker would try)."""
    return pyjwt.encode(claims, None, algorithm="none", headers={"kid": kid})


def installation() -> tuple[str, str]:
    """A fresh (installationId, cloudId) pair."""
    return f"ari:cloud:ecosystem::installation/{uuid.uuid4()}", str(uuid.uuid4())
