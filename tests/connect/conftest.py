"""Connect test fixtures: a real install-keys service on loopback and Atlassian-style signers."""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask

from connect.jwt import query_string_hash
from tests.conftest import BASE_URL, build_app


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key (what Atlassian signs installs with)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class KeyService:
    """The install-keys service: GET /<kid> returns that key's PEM, else 404."""

    url: str
    keys: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def publish(self, key: rsa.RSAPrivateKey) -> str:
        kid = str(uuid.uuid4())
        self.keys[kid] = public_pem(key)
        return kid


@pytest.fixture(scope="session")
def key_service() -> Iterator[KeyService]:
    """A real HTTP server on loopback standing in for connect-install-keys.atlassian.com."""
    service = KeyService(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            kid = self.path.rsplit("/", 1)[-1]
            service.requests.append(kid)
            pem = service.keys.get(kid)
            self.send_response(200 if pem else 404)
            self.send_header("Content-Type", "application/x-pem-file")
            body = pem or b"not found"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.url = f"http://127.0.0.1:{server.server_address[1]}/keys"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield service
    server.shutdown()
    server.server_close()


@dataclass
class AtlassianSigner:
    """Signs lifecycle callbacks like Atlassian: RS256 with a published kid."""

    key: rsa.RSAPrivateKey
    kid: str

    def install_token(self, client_key: str, path: str = "/installed", aud: Any = BASE_URL,
                      **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": client_key, "aud": aud, "iat": now, "exp": now + 180,
                                  "qsh": query_string_hash("POST", path, [])}
        claims.update(overrides)
        return pyjwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture(scope="session")
def atlassian_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


@pytest.fixture
def signer(key_service: KeyService, atlassian_key: rsa.RSAPrivateKey) -> AtlassianSigner:
    return AtlassianSigner(atlassian_key, key_service.publish(atlassian_key))


@pytest.fixture
def connect_app(database_url: str, key_service: KeyService) -> Iterator[Flask]:
    """An app on each backend whose install keys come from the loopback key service."""
    application = build_app(database_url, INFLOW_INSTALL_KEYS_URL=key_service.url)
    yield application
    application.extensions["inflow.db"].dispose()


@pytest.fixture
def keyed_app(sqlite_url: str, key_service: KeyService) -> Iterator[Flask]:
    """A SQLite app whose install keys come from the loopback key service."""
    application = build_app(sqlite_url, INFLOW_INSTALL_KEYS_URL=key_service.url)
    yield application
    application.extensions["inflow.db"].dispose()


def install_payload(client_key: str, secret: str = "s3cret-" + "x" * 24,
                    product: str = "jira", **extra: Any) -> dict[str, Any]:
    """An `installed` body as Atlassian sends it."""
    base = f"https://{client_key}.atlassian.net" + ("/wiki" if product == "confluence" else "")
    payload = {"key": "io.inflow.app", "clientKey": client_key, "sharedSecret": secret,
               "baseUrl": base, "displayUrl": base, "productType": product,
               "description": "Atlassian site", "eventType": "installed",
               "oauthClientId": f"oauth-{client_key}", "cloudId": f"cloud-{client_key}",
               "serverVersion": "100", "pluginsVersion": "1.0"}
    payload.update(extra)
    return payload


def alg_none_token(claims: dict[str, Any]) -> str:
    """An unsigned token (`alg: none`), which must never be accepted."""
    return pyjwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
