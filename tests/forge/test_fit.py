"""Forge Invocation Tokens: verified against a JWKS over real HTTP, tenant from the installation."""
from __future__ import annotations

import time

import pytest
from flask import Flask
from sqlalchemy import func, select

from connect.forge import JWKSCache, verify_fit
from connect.jwt import JWTRejected
from connect.models import Tenant, WebhookEvent
from tests.conftest import install_tenant
from tests.forge.conftest import ForgeInstall, connect_only_app
from tests.forge.fit import APP_ID, JWKSServer, SigningKey, sign, unsigned


def counts(app: Flask) -> tuple[int, int]:
    with app.extensions["inflow.db"].session() as session:
        return (session.scalar(select(func.count(Tenant.id))),
                session.scalar(select(func.count(WebhookEvent.id))))


def test_valid_fit_passes_require_jwt_context_with_tenant_and_principal(
        forge_app: Flask, forge_install: ForgeInstall) -> None:
    response = forge_app.test_client().get("/api/echo", headers=forge_install.headers(principal="acc-7"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["account_id"] == "acc-7"
    assert response.get_json()["host"] == "forge"
    with forge_app.extensions["inflow.db"].session() as session:
        tenant = session.scalar(select(Tenant))
        assert (tenant.host, tenant.forge_installation_id) == ("forge", forge_install.installation_id)
        assert tenant.cloud_id == forge_install.cloud_id and tenant.product_type == "jira"
        assert tenant.display_url.endswith(".atlassian.net")


def test_the_same_installation_is_one_tenant_across_calls(forge_app: Flask,
                                                          forge_install: ForgeInstall) -> None:
    client = forge_app.test_client()
    for _ in range(3):
        assert client.get("/api/echo", headers=forge_install.headers()).status_code == 200
    assert counts(forge_app) == (1, 0)


def test_a_connect_installation_on_the_same_site_becomes_the_forge_tenant(
        forge_app: Flask, forge_install: ForgeInstall) -> None:
    db = forge_app.extensions["inflow.db"]
    connect = install_tenant(db, "jira")
    with db.session() as session:
        session.get(Tenant, connect.tenant_id).cloud_id = forge_install.cloud_id
    assert forge_app.test_client().get("/api/echo", headers=forge_install.headers()).status_code == 200
    with db.session() as session:
        tenants = session.scalars(select(Tenant)).all()
        assert [t.id for t in tenants] == [connect.tenant_id]
        assert tenants[0].forge_installation_id == forge_install.installation_id
        assert tenants[0].client_key == connect.client_key  # Connect JWTs keep working
    assert forge_app.test_client().get("/api/echo", headers=connect.context_headers()).status_code == 200


def test_the_product_api_serves_a_forge_user(full_app: Flask, forge_install: ForgeInstall) -> None:
    response = full_app.test_client().get("/api/me", headers=forge_install.headers(principal="acc-7"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["account_id"] == "acc-7"


@pytest.mark.parametrize("case", ["wrong audience", "wrong issuer", "expired", "other key",
                                  "unknown kid", "alg none", "hs256 with public key",
                                  "no installation", "garbage", "missing", "installation too long",
                                  "cloud id too long", "site url too long"])
def test_bad_tokens_get_401_json_and_store_nothing(forge_app: Flask, forge_install: ForgeInstall,
                                                   case: str) -> None:
    claims = forge_install.claims()
    token = {
        "wrong audience": lambda: forge_install.token(aud="ari:cloud:ecosystem::app/someone-else"),
        "wrong issuer": lambda: forge_install.token(iss="forge/other"),
        "expired": lambda: forge_install.token(exp=int(time.time()) - 3600),
        "other key": lambda: sign(claims, SigningKey(kid=forge_install.key.kid)),
        "unknown kid": lambda: sign(claims, SigningKey()),
        "alg none": lambda: unsigned(claims, forge_install.key.kid),
        "hs256 with public key": lambda: __import__("jwt").encode(
            claims, forge_install.key.jwk()["n"], algorithm="HS256",
            headers={"kid": forge_install.key.kid}),
        "no installation": lambda: forge_install.token(app={"id": APP_ID}),
        "garbage": lambda: "not.a.jwt",
        "missing": lambda: "",
        # Valid signatures (only Atlassian could sign them), longer than any column keeps.
        "installation too long": lambda: forge_install.token(app={**claims["app"], "installationId": "i" * 250}),
        "cloud id too long": lambda: forge_install.token(context={**claims["context"], "cloudId": "c" * 256}),
        "site url too long": lambda: forge_install.token(
            context={**claims["context"], "siteUrl": "https://" + "s" * 510 + ".net"}),
    }[case]()
    client = forge_app.test_client()
    body = {"eventType": "avi:jira:created:issue", "issue": {"id": "1", "key": "P-1"}}
    for method, path in (("GET", "/api/echo"), ("POST", "/forge/events"), ("POST", "/forge/lifecycle")):
        response = client.open(path, method=method, json=body if method == "POST" else None,
                               headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (path, response.get_json())
        assert response.is_json and response.get_json()["error"] == "unauthorized"
    assert counts(forge_app) == (0, 0)


def test_fit_is_refused_when_no_app_id_is_configured(sqlite_url: str, jwks: JWKSServer,
                                                     forge_install: ForgeInstall) -> None:
    app = connect_only_app(sqlite_url, INFLOW_FORGE_JWKS_URL=jwks.url)
    response = app.test_client().get("/api/echo", headers=forge_install.headers())
    assert response.status_code == 401
    app.extensions["inflow.db"].dispose()


def test_keys_are_cached_by_kid(jwks: JWKSServer, forge_install: ForgeInstall) -> None:
    cache = JWKSCache(jwks.url)
    for _ in range(5):
        verify_fit(forge_install.token(), cache, APP_ID)
    assert jwks.fetches == 1


def test_an_unknown_kid_refetches_once_per_interval(jwks: JWKSServer,
                                                    forge_install: ForgeInstall) -> None:
    cache = JWKSCache(jwks.url, refetch_interval=3600)
    verify_fit(forge_install.token(), cache, APP_ID)
    rotated = SigningKey()
    jwks.keys.append(rotated)
    for _ in range(3):  # the new key was published after our fetch: rate limit holds
        with pytest.raises(JWTRejected):
            verify_fit(sign(forge_install.claims(), rotated), cache, APP_ID)
    assert jwks.fetches == 1


def test_a_rotated_key_is_accepted_after_a_refetch(jwks: JWKSServer,
                                                   forge_install: ForgeInstall) -> None:
    cache = JWKSCache(jwks.url, refetch_interval=0)
    verify_fit(forge_install.token(), cache, APP_ID)
    rotated = SigningKey()
    jwks.keys.append(rotated)
    claims = verify_fit(sign(forge_install.claims(principal="acc-9"), rotated), cache, APP_ID)
    assert claims["principal"] == "acc-9" and jwks.fetches == 2


def test_an_unreachable_jwks_rejects_rather_than_errors(forge_install: ForgeInstall) -> None:
    from tests.conftest import free_port
    cache = JWKSCache(f"http://127.0.0.1:{free_port()}/jwks.json", timeout=1)
    with pytest.raises(JWTRejected):
        verify_fit(forge_install.token(), cache, APP_ID)
