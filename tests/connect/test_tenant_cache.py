"""Verified tenants are cached briefly per process, never past a change to their row."""
from __future__ import annotations

import secrets
import time

import jwt as pyjwt
import pytest
from flask import Flask
from sqlalchemy import event, update

from connect.auth import TENANTS
from connect.jwt import HS256Token, JWTRejected, check_times
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


def _token(claims: dict, secret: str = "k" * 32, header: dict | None = None) -> str:
    return pyjwt.encode(claims, secret, algorithm="HS256", headers=header)


def test_the_single_pass_verifier_refuses_what_pyjwt_refuses() -> None:
    now = int(time.time())
    good = {"iss": "a", "iat": now, "exp": now + 60}
    assert HS256Token.parse(_token(good)).signed_with("k" * 32)
    assert not HS256Token.parse(_token(good)).signed_with("x" * 32)
    for bad in ("a.b", "a.b.c.d", "!!.e30.", _token(good)[:-3] + "***"):
        with pytest.raises(JWTRejected):
            HS256Token.parse(bad)
    with pytest.raises(JWTRejected, match="Unsupported"):
        HS256Token.parse(pyjwt.encode(good, "k" * 64, algorithm="HS512"))
    with pytest.raises(JWTRejected):
        HS256Token.parse(_token(good, header={"crit": ["exp"]}))
    invalid = "signature or claims invalid"
    for claims, message in [({**good, "exp": now - 31}, "expired"), ({**good, "iat": now + 60}, invalid),
                            ({**good, "nbf": now + 60}, invalid), ({"iss": "a", "iat": now}, invalid),
                            ({**good, "exp": "soon"}, invalid), ({**good, "sub": 7}, invalid)]:
        with pytest.raises(JWTRejected, match=message):
            check_times(claims, now)
    check_times({**good, "exp": now - 29}, now)  # within the 30 s leeway
