"""Atlassian Connect JWT: canonical requests, query string hashes, and the ordered verifier."""
from __future__ import annotations

import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import jwt as pyjwt

from connect.strings import account_id, storable

CONTEXT_QSH = "context-qsh"
LEEWAY_SECONDS = 30
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")  # exactly what quote(safe="-._~") leaves as it is
# Why these: Atlassian's own libraries accept HS256 for shared-secret tokens; nothing else is issued.
SYMMETRIC_ALGORITHMS = ("HS256",)
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")  # a JWT segment without padding


class JWTRejected(Exception):
    """A request whose token does not prove who sent it; always rendered as 401."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class BadSignature(JWTRejected):
    """The token is not signed with the secret it was checked against (the message stays vague)."""

    def __init__(self) -> None:
        super().__init__("JWT signature or claims invalid")


class Expired(JWTRejected):
    """The token was good but its lifetime is over (a frame left open: reloading signs a new one)."""

    def __init__(self) -> None:
        super().__init__("JWT expired")


def encode_rfc3986(value: str) -> str:
    """Percent-encode everything but RFC 3986 unreserved characters (as OAuth 1 does)."""
    if _UNRESERVED.fullmatch(value):
        return value  # nothing to encode (most keys and values): quote() costs ten times more
    return quote(value, safe="-._~")


def canonical_path(path: str, base_path: str = "") -> str:
    """The request path relative to the app's base URL path, as Atlassian canonicalises it."""
    base_path = base_path.rstrip("/")
    if base_path and path.startswith(base_path):
        path = path[len(base_path):]
    if not path:
        return "/"
    path = path.replace("&", "%26")
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sorted keys, repeated values sorted (unencoded) and comma-joined, `jwt` left out."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        if key == "jwt":
            continue
        grouped.setdefault(key, []).append(value)
    parts = []
    for key in sorted(grouped):
        values = ",".join(encode_rfc3986(v) for v in sorted(grouped[key]))
        parts.append(f"{encode_rfc3986(key)}={values}")
    return "&".join(parts)


def parse_query(query_string: str) -> list[tuple[str, str]]:
    """Decode a raw query string into pairs, keeping blank values ('+' is a space)."""
    return parse_qsl(query_string, keep_blank_values=True)


def canonical_request(method: str, path: str, query: Iterable[tuple[str, str]],
                      base_path: str = "") -> str:
    """METHOD&path&query, the string whose SHA-256 is the qsh claim."""
    return f"{method.upper()}&{canonical_path(path, base_path)}&{canonical_query(query)}"


def query_string_hash(method: str, path: str, query: Iterable[tuple[str, str]],
                      base_path: str = "") -> str:
    """Hex SHA-256 of the canonical request."""
    canonical = canonical_request(method, path, query, base_path)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def qsh_for_url(method: str, url: str, base_url: str = "") -> str:
    """The qsh of a full URL, relative to a host's base URL (outbound calls)."""
    parts = urlsplit(url)
    base_path = urlsplit(base_url).path if base_url else ""
    return query_string_hash(method, parts.path, parse_query(parts.query), base_path)


def encode_token(claims: dict[str, Any], secret: str) -> str:
    """Sign claims with HS256 and the shared secret."""
    return pyjwt.encode(claims, secret, algorithm="HS256")


def app_token(app_key: str, secret: str, method: str, url: str, base_url: str,
              ttl: int = 180, extra: dict[str, Any] | None = None) -> str:
    """A short-lived token for one outbound request from the app to a host."""
    now = int(time.time())
    claims = {"iss": app_key, "iat": now, "exp": now + ttl,
              "qsh": qsh_for_url(method, url, base_url)}
    claims.update(extra or {})
    return encode_token(claims, secret)


@dataclass(frozen=True)
class RequestFacts:
    """What the verifier needs of an incoming HTTP request."""

    method: str
    path: str
    query: list[tuple[str, str]]
    base_path: str = ""


@dataclass(frozen=True)
class Verified:
    """A token that passed every check, with the issuer's secret-holder record."""

    claims: dict[str, Any]
    tenant: Any
    context_qsh: bool

    @property
    def account_id(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None


def unverified_header(token: str) -> dict[str, Any]:
    """The token header, or JWTRejected when it is not a JWT at all."""
    try:
        return pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError as exc:
        raise JWTRejected("Malformed JWT") from exc


def check_qsh(claims: dict[str, Any], facts: RequestFacts, allow_context: bool) -> bool:
    """Verify the qsh claim; returns True when it was a context token."""
    qsh = claims.get("qsh")
    if qsh == CONTEXT_QSH:
        if not allow_context:
            raise JWTRejected("Context JWT not accepted on this route")
        return True
    expected = query_string_hash(facts.method, facts.path, facts.query, facts.base_path)
    if not isinstance(qsh, str) or qsh != expected:
        raise JWTRejected("JWT qsh does not match the request")
    return False


def _unverified(token: str) -> dict[str, Any]:
    """Header and claims as PyJWT reads them, before the key is known (the issuer names it)."""
    plain = _plain(token)
    if plain is not None:
        return plain
    try:
        return pyjwt.decode_complete(token, options={"verify_signature": False})
    except pyjwt.PyJWTError as exc:
        raise JWTRejected("Malformed JWT") from exc


def _plain(token: str) -> dict[str, Any] | None:
    """A plain token's header and claims (alg and typ only, no padding), else None.

    Why: PyJWT's unverified read costs what its verified one does (it checks each character in
    Python), and every iframe view paid both. This read only picks the secret; PyJWT's verified
    decode judges the token, and any token out of the ordinary is read by PyJWT here too.
    """
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(part) and len(part) % 4 != 1 for part in parts):
        return None
    try:
        header, payload = (json.loads(pyjwt.utils.base64url_decode(part)) for part in parts[:2])
    except (ValueError, binascii.Error, RecursionError):  # nested too deep: PyJWT's read refuses it
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict) or not header.keys() <= {"alg", "typ"}:
        return None
    return {"header": header, "payload": payload}


def _verified_claims(token: str, secret: str, audience: str | None) -> dict[str, Any]:
    """PyJWT's checks: HS256 signature, then required iss/exp/iat, exp/iat/nbf with leeway,
    sub and jti strings, and the audience only when the caller names one."""
    try:
        decoded = pyjwt.decode_complete(
            token, secret, algorithms=SYMMETRIC_ALGORITHMS, leeway=LEEWAY_SECONDS,
            audience=audience,
            options={"require": ["iss", "exp", "iat"], "verify_aud": audience is not None})
    except pyjwt.InvalidSignatureError as exc:
        raise BadSignature() from exc
    except pyjwt.ExpiredSignatureError as exc:
        raise Expired() from exc
    except pyjwt.PyJWTError as exc:
        raise JWTRejected("JWT signature or claims invalid") from exc
    claims: dict[str, Any] = decoded["payload"]
    return claims


def verify_symmetric(token: str, facts: RequestFacts,
                     load_tenant: Callable[[str], Any | None],
                     secret_of: Callable[[Any], str],
                     allow_context_qsh: bool = False,
                     audience: str | None = None) -> Verified:
    """The ordered verifier for HS256 tokens from an installed tenant.

    Read header and issuer (unverified), load the issuer's tenant, then let PyJWT verify the
    signature and claims with its secret, then check the qsh. PyJWT takes no key-resolving
    callback, so the token is read twice: once to find the key, once to verify with it.
    """
    unverified = _unverified(token)
    if unverified["header"].get("alg") not in SYMMETRIC_ALGORITHMS:
        raise JWTRejected("Unsupported JWT algorithm")
    issuer = unverified["payload"].get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise JWTRejected("JWT has no issuer")
    if len(issuer) > 255 or not storable(issuer):  # looked up before the signature is checked
        raise JWTRejected("JWT issuer is not a client key")
    tenant = load_tenant(issuer)
    if tenant is None:
        raise JWTRejected("Unknown tenant")
    claims = _verified_claims(token, secret_of(tenant), audience)
    if claims.get("sub") is not None and not account_id(claims["sub"]):
        raise JWTRejected("JWT subject is not an account id")
    context = check_qsh(claims, facts, allow_context_qsh)
    return Verified(claims=claims, tenant=tenant, context_qsh=context)


def verify_asymmetric(token: str, facts: RequestFacts, public_key_for: Callable[[str], Any],
                      audience: str) -> dict[str, Any]:
    """RS256 with a `kid` only (signed install); returns the verified claims."""
    header = unverified_header(token)
    kid = header.get("kid")
    if header.get("alg") != "RS256" or not isinstance(kid, str) or not kid:
        raise JWTRejected("Install requests must be signed with RS256 and a kid")
    key = public_key_for(kid)
    try:
        claims = pyjwt.decode(
            token, key, algorithms=["RS256"], audience=audience, leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "exp", "iat", "aud", "qsh"]},
        )
    except pyjwt.ExpiredSignatureError as exc:
        raise Expired() from exc
    except pyjwt.PyJWTError as exc:
        raise JWTRejected("Install JWT signature or claims invalid") from exc
    check_qsh(claims, facts, allow_context=False)
    return claims
