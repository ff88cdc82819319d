"""Verified tenants are cached briefly per process, never past a change to their row."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

import jwt as pyjwt
import pytest
from flask import Flask
from sqlalchemy import event, update

from connect.auth import TENANTS
from connect.jwt import BadSignature, JWTRejected, RequestFacts, Verified, verify_symmetric
from connect.models import Tenant
from tests.conftest import TenantAuth, install_tenant

PATH = "/api/me"


def _status(app: Flask, tenant: TenantAuth) -> int:
    return app.test_client().get(PATH, headers=tenant.context_headers()).status_code


def test_a_rotated_secret_is_accepted_at_once_even_from_another_process(app: Flask) -> None:
    db = app.extensions["inflow.db"]
    tenant = install_tenant(db)
    assert _status(app, tenant) == 200  # now cached
    rotated = TenantAuth(tenant.tenant_id, tenant.client_key, secrets.token_hex(32),
                         tenant.base_url, tenant.product)
    with db.engine.begin() as conn:  # as another process's reinstall: no ORM event here
        conn.execute(update(Tenant).where(Tenant.id == tenant.tenant_id)
                     .values(shared_secret=rotated.secret))
    assert _status(app, rotated) == 200  # the cached secret fails, the stored row is checked
    assert _status(app, tenant) == 401  # and the old secret is refused


def test_only_a_bad_signature_makes_a_cached_tenant_be_read_again(app: Flask) -> None:
    db = app.extensions["inflow.db"]
    tenant = install_tenant(db)
    assert _status(app, tenant) == 200  # now cached
    reads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "FROM tenants" in statement:
            reads.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        client = app.test_client()
        expired = {"Authorization": f"JWT {tenant.token('GET', '/', context=True, ttl=-100)}"}
        response = client.get(PATH, headers=expired)
        assert (response.status_code, response.json["message"]) == (401, "JWT expired")
        response = client.get(PATH, headers=tenant.headers("GET", "/api/elsewhere"))
        assert (response.status_code, response.json["message"]) == (401, "JWT qsh does not match the request")
        assert reads == []  # neither can be a stale secret: the cached row judged them
        forged = TenantAuth(tenant.tenant_id, tenant.client_key, secrets.token_hex(32),
                            tenant.base_url, tenant.product)
        assert _status(app, forged) == 401
        assert len(reads) == 1  # a bad signature may be a rotated secret: the stored row, once
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert _status(app, tenant) == 200


def test_an_uninstall_in_this_process_is_seen_at_once(app: Flask) -> None:
    db = app.extensions["inflow.db"]
    tenant = install_tenant(db)
    assert _status(app, tenant) == 200
    with db.session() as session:
        session.get(Tenant, tenant.tenant_id).installed = False
    assert _status(app, tenant) == 401


def test_cached_rows_expire(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    db = app.extensions["inflow.db"]
    tenant = install_tenant(db)
    assert _status(app, tenant) == 200
    with db.engine.begin() as conn:  # another process uninstalls
        conn.execute(update(Tenant).where(Tenant.id == tenant.tenant_id).values(installed=False))
    later = time.monotonic() + TENANTS.ttl + 1
    monkeypatch.setattr("connect.auth.time.monotonic", lambda: later)
    assert _status(app, tenant) == 401


def _token(claims: dict, secret: str = "k" * 32, header: dict | None = None,
           algorithm: str = "HS256") -> str:
    return pyjwt.encode(claims, secret, algorithm=algorithm, headers=header)


def _signed(header: dict, claims: dict, secret: str = "k" * 32) -> str:
    """A token PyJWT would not write (it checks headers when encoding too)."""
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(claims)}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _verify(token: str) -> Verified:
    """The verifier for a token of issuer "a" (secret "k" * 32) on a route that takes context."""
    facts = RequestFacts("GET", PATH, [])
    return verify_symmetric(token, facts, lambda key: "tenant-a" if key == "a" else None,
                            lambda _tenant: "k" * 32, allow_context_qsh=True)


def test_the_verifier_refuses_malformed_tokens_other_algorithms_and_bad_claims() -> None:
    now = int(time.time())
    good = {"iss": "a", "iat": now, "exp": now + 60, "qsh": "context-qsh"}
    assert _verify(_token(good)).tenant == "tenant-a"
    with pytest.raises(BadSignature):
        _verify(_token(good, secret="x" * 32))
    for bad in ("a.b", "a.b.c.d", "!!.e30.", _token(good)[:-3] + "***",
                _token(good, header={"crit": ["exp"]}), _signed({"alg": "HS256", "kid": 7}, good)):
        with pytest.raises(JWTRejected, match="Malformed"):
            _verify(bad)
    for other in (_token(good, "k" * 64, algorithm="HS512"), _token(good, None, algorithm="none")):
        with pytest.raises(JWTRejected, match="Unsupported"):
            _verify(other)
    with pytest.raises(JWTRejected, match="Unknown tenant"):
        _verify(_token({**good, "iss": "b"}))
    invalid = "signature or claims invalid"
    for claims, message in [({**good, "exp": now - 31}, "expired"), ({**good, "iat": now + 60}, invalid),
                            ({**good, "nbf": now + 60}, invalid),
                            ({k: v for k, v in good.items() if k != "exp"}, invalid),
                            ({**good, "exp": "soon"}, invalid), ({**good, "sub": 7}, invalid),
                            ({**good, "jti": 7}, invalid)]:
        with pytest.raises(JWTRejected, match=message):
            _verify(_token(claims))
    assert _verify(_token({**good, "exp": now - 25})).claims["iss"] == "a"  # 30 s leeway
    assert _verify(_token({**good, "aud": "someone"})).tenant == "tenant-a"  # no audience asked


def test_a_token_nested_past_the_parsers_depth_is_malformed_not_a_500(app: Flask) -> None:
    """The fast read of a plain token met a RecursionError that PyJWT's own read refuses."""
    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    deep = b"[" * 5000 + b"]" * 5000
    header, claims = part(b'{"alg":"HS256"}'), part(b'{"iss":"a"}')
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for token in (f"{header}.{part(deep)}.c2ln", f"{part(deep)}.{claims}.c2ln"):
        with pytest.raises(JWTRejected, match="Malformed"):
            _verify(token)
        response = app.test_client().get(PATH, headers={"Authorization": f"JWT {token}"})
        assert (response.status_code, response.json["message"]) == (401, "Malformed JWT")
