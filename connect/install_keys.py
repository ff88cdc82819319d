"""Atlassian's signed-install public keys, fetched by `kid` and cached."""
from __future__ import annotations

import re
import threading
from typing import Any

import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from connect.jwt import JWTRejected

# Connect key ids are UUID-like; anything else could walk the keys service's paths.
KID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}\Z")
TIMEOUT_SECONDS = (2.0, 3.0)  # connect, read: an install must not hang on the keys service
MAX_KEYS = 64  # only keys that verified a fetch are cached; bound it all the same
MAX_KEY_BYTES = 16 * 1024


class InstallKeys:
    """A per-app cache of install public keys by (keys service URL, kid)."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, keys_url: str, kid: str) -> RSAPublicKey:
        """The RSA public key for `kid`; JWTRejected (401) when it cannot be had."""
        if not KID_PATTERN.match(kid) or kid in (".", ".."):
            raise JWTRejected("Install JWT has an invalid kid")
        cache_key = (keys_url.rstrip("/"), kid)
        with self._lock:
            cached = self._keys.get(cache_key)
        if cached is not None:
            return cached
        key = fetch_public_key(cache_key[0], kid)
        with self._lock:
            if len(self._keys) >= MAX_KEYS:
                self._keys.pop(next(iter(self._keys)))
            self._keys[cache_key] = key
        return key

    def clear(self) -> None:
        """Forget every cached key."""
        with self._lock:
            self._keys.clear()


def fetch_public_key(keys_url: str, kid: str) -> RSAPublicKey:
    """GET `{keys_url}/{kid}` and parse the PEM; any failure is a 401, never a 5xx."""
    try:
        response = requests.get(f"{keys_url}/{kid}", timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise JWTRejected("Install key service unreachable") from exc
    if response.status_code != 200 or len(response.content) > MAX_KEY_BYTES:
        raise JWTRejected("Install key not found")
    try:
        key = load_pem_public_key(response.content)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise JWTRejected("Install key is not a PEM public key") from exc
    if not isinstance(key, RSAPublicKey):
        raise JWTRejected("Install key is not an RSA key")
    return key
