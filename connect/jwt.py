"""Atlassian Connect JWT: canonical requests, query string hashes, and the ordered verifier."""
from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import jwt as pyjwt

CONTEXT_QSH = "context-qsh"
LEEWAY_SECONDS = 30
_B64URL_TO_STD = bytes.maketrans(b"-_", b"+/")
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")  # exactly what quote(safe="-._~") leaves as it is
# Why these: Atlassian's own libraries accept HS256 for shared-secret tokens; nothing else is issued.
SYMMETRIC_ALGORITHMS = ("HS256",)


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


def _b64url(segment: str) -> bytes:
    """Strict base64url (no padding in a JWT): anything outside the alphabet is malformed."""
    # Exactly base64.b64decode(..., altchars=b"-_", validate=True), without building its
    # translation table on every call (three segments per request).
    padded = (segment + "=" * (-len(segment) % 4)).encode("ascii")  # non-ASCII: ValueError
    return binascii.a2b_base64(padded.translate(_B64URL_TO_STD), strict_mode=True)


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url(segment))
    except (ValueError, binascii.Error, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise JWTRejected("Malformed JWT") from exc
    if not isinstance(value, dict):
        raise JWTRejected("Malformed JWT")
    return value


@dataclass(frozen=True)
class HS256Token:
    """A compact JWS split once: header and claims parsed, signature not yet checked."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @classmethod
    def parse(cls, token: str) -> HS256Token:
        """Split and decode; JWTRejected when it is not a well-formed HS256 token."""
        parts = token.split(".")
        if len(parts) != 3 or not all(parts[:2]):
            raise JWTRejected("Malformed JWT")
        header = _json_object(parts[0])
        if header.get("alg") not in SYMMETRIC_ALGORITHMS:
            raise JWTRejected("Unsupported JWT algorithm")
        if "crit" in header or not isinstance(header.get("kid", ""), str):
            raise JWTRejected("Malformed JWT")  # no critical extensions are understood here
        claims = _json_object(parts[1])
        try:
            signature = _b64url(parts[2])
        except (ValueError, binascii.Error) as exc:
            raise JWTRejected("Malformed JWT") from exc
        return cls(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)

    def signed_with(self, secret: str) -> bool:
        """Whether the signature is HMAC-SHA256 of the signing input under `secret`."""
        mac = _keyed_hmac(secret).copy()
        mac.update(self.signing_input)
        return hmac.compare_digest(mac.digest(), self.signature)


@functools.lru_cache(maxsize=64)
def _keyed_hmac(secret: str) -> hmac.HMAC:
    # The key schedule once per secret, copied for each token. Why: hmac.digest() set it up on
    # every call and released the GIL around it, and under gunicorn's threads each release is a
    # contended handoff; an update this small (under 2 KiB) keeps the GIL.
    return hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)


def _int_claim(claims: dict[str, Any], name: str) -> int:
    try:
        return int(claims[name])  # as PyJWT reads numeric dates
    except (ValueError, TypeError, OverflowError) as exc:
        raise JWTRejected("JWT signature or claims invalid") from exc


def check_times(claims: dict[str, Any], now: float | None = None) -> None:
    """Required iss/exp/iat and the time claims with leeway, as PyJWT checks them."""
    if any(claims.get(name) is None for name in ("iss", "exp", "iat")):
        raise JWTRejected("JWT signature or claims invalid")
    now = time.time() if now is None else now
    if _int_claim(claims, "iat") > now + LEEWAY_SECONDS:
        raise JWTRejected("JWT signature or claims invalid")
    if "nbf" in claims and _int_claim(claims, "nbf") > now + LEEWAY_SECONDS:
        raise JWTRejected("JWT signature or claims invalid")
    if _int_claim(claims, "exp") <= now - LEEWAY_SECONDS:
        raise JWTRejected("JWT expired")
    for name in ("sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise JWTRejected("JWT signature or claims invalid")


def verify_symmetric(token: str, facts: RequestFacts,
                     load_tenant: Callable[[str], Any | None],
                     secret_of: Callable[[Any], str],
                     allow_context_qsh: bool = False,
                     audience: str | None = None) -> Verified:
    """The ordered verifier for HS256 tokens from an installed tenant.

    The token is decoded once (PyJWT decodes it three times over, which was most of an iframe
    request's verification cost); signature first, then claims, then qsh, as before.
    """
    parsed = HS256Token.parse(token)
    issuer = parsed.claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise JWTRejected("JWT has no issuer")
    tenant = load_tenant(issuer)
    if tenant is None:
        raise JWTRejected("Unknown tenant")
    if not parsed.signed_with(secret_of(tenant)):
        raise BadSignature()
    claims = parsed.claims
    check_times(claims)
    if audience is not None:
        _check_audience(token, secret_of(tenant), audience)
    context = check_qsh(claims, facts, allow_context_qsh)
    return Verified(claims=claims, tenant=tenant, context_qsh=context)


def _check_audience(token: str, secret: str, audience: str) -> None:
    """Audience rules are PyJWT's (string or list, strict forms); only callers that ask pay."""
    try:
        pyjwt.decode(token, secret, algorithms=list(SYMMETRIC_ALGORITHMS), leeway=LEEWAY_SECONDS,
                     audience=audience, options={"require": ["iss", "exp", "iat"]})
    except pyjwt.ExpiredSignatureError as exc:
        raise JWTRejected("JWT expired") from exc
    except pyjwt.PyJWTError as exc:
        raise JWTRejected("JWT signature or claims invalid") from exc


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
        raise JWTRejected("JWT expired") from exc
    except pyjwt.PyJWTError as exc:
        raise JWTRejected("Install JWT signature or claims invalid") from exc
    check_qsh(claims, facts, allow_context=False)
    return claims
