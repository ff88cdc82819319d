"""Forge Remote essentials: Isolated Cloud keys, reinstalls, token lifetimes."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import jwt as pyjwt
import pytest
from flask import Flask, g
from sqlalchemy import func, select

from connect.db import utcnow
from connect.forge import (
    ForgeHostClient,
    ForgeInvocation,
    NoForgeToken,
    client_for_tenant,
    token_expiry,
)
from connect.models import Tenant
from tests.forge.conftest import ForgeInstall, connect_only_app
from tests.forge.fit import APP_ID, JWKSServer, SigningKey, installation, sign


@pytest.fixture
def ic_keys() -> Iterator[tuple[SigningKey, JWKSServer]]:
    """An Isolated Cloud with keys of its own, served by its own JWKS server."""
    key = SigningKey()
    server = JWKSServer([key]).start()
    yield key, server
    server.stop()


@pytest.fixture
def ic_app(sqlite_url: str, jwks: JWKSServer,
           ic_keys: tuple[SigningKey, JWKSServer]) -> Iterator[Flask]:
    """Trusts the commercial JWKS and, by template, each Isolated Cloud's."""
    _, server = ic_keys
    template = server.url.replace("/.well-known/jwks.json", "/{IC_LABEL}/jwks.json")
    app = connect_only_app(sqlite_url, INFLOW_FORGE_JWKS_URL=jwks.url, INFLOW_FORGE_APP_ID=APP_ID,
                           INFLOW_FORGE_IC_JWKS_URL_TEMPLATE=template)
    yield app
    app.extensions["inflow.db"].dispose()


def tenants(app: Flask) -> list[Tenant]:
    with app.extensions["inflow.db"].session() as session:
        return list(session.scalars(select(Tenant).order_by(Tenant.id)))


@pytest.mark.parametrize("label", ["../../evil", "orange/../x", "a.b", "Orange", "x" * 51, "",
                                   "orange?x=1", "orange#", "%2e%2e"])
def test_an_ic_label_with_path_characters_is_refused_before_any_key_is_fetched(
        ic_app: Flask, forge_install: ForgeInstall, ic_keys: tuple[SigningKey, JWKSServer],
        jwks: JWKSServer, label: str) -> None:
    key, server = ic_keys
    token = sign(forge_install.claims(icLabel=label), key)
    response = ic_app.test_client().get("/api/echo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"
    assert "icLabel" in response.get_json()["message"]
    assert server.paths == [] and jwks.fetches == 0 and tenants(ic_app) == []


def test_an_ic_token_is_checked_against_that_clouds_keys(
        ic_app: Flask, forge_install: ForgeInstall,
        ic_keys: tuple[SigningKey, JWKSServer], jwks: JWKSServer) -> None:
    key, server = ic_keys
    client = ic_app.test_client()
    ok = client.get("/api/echo", headers={
        "Authorization": f"Bearer {sign(forge_install.claims(icLabel='orange'), key)}"})
    assert ok.status_code == 200, ok.get_json()
    assert server.paths == ["/orange/jwks.json"] and jwks.fetches == 0
    # The commercial key does not sign for an Isolated Cloud, nor the IC key for commercial.
    commercial = forge_install.token(icLabel="orange")
    assert client.get("/api/echo", headers={"Authorization": f"Bearer {commercial}"}
                      ).status_code == 401
    assert client.get("/api/echo", headers={
        "Authorization": f"Bearer {sign(forge_install.claims(), key)}"}).status_code == 401


@pytest.mark.parametrize("claim", [{"aud": "ari:cloud:ecosystem::app/other"},
                                   {"iss": "forge/other"}, {"exp": 1000}])
def test_an_ic_token_still_needs_our_audience_the_forge_issuer_and_time(
        ic_app: Flask, forge_install: ForgeInstall, ic_keys: tuple[SigningKey, JWKSServer],
        claim: dict) -> None:
    key, _ = ic_keys
    token = sign(forge_install.claims(icLabel="orange", **claim), key)
    response = ic_app.test_client().get("/api/echo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.is_json


def test_ic_tokens_are_refused_where_no_ic_template_is_configured(
        forge_app: Flask, forge_install: ForgeInstall, jwks: JWKSServer) -> None:
    response = forge_app.test_client().get(
        "/api/echo", headers={"Authorization": f"Bearer {forge_install.token(icLabel='orange')}"})
    assert response.status_code == 401 and "Isolated Cloud" in response.get_json()["message"]
    assert jwks.fetches == 0


def test_a_reinstall_on_the_same_site_finds_its_earlier_data(
        full_app: Flask, forge_install: ForgeInstall) -> None:
    from plugin.services.settings import preference

    client = full_app.test_client()
    saved = client.post("/api/me/preferences", json={"opted_out": True, "pause_days": 0},
                        headers=forge_install.headers(principal="acc-1"))
    assert saved.status_code == 200, saved.get_json()
    [before] = tenants(full_app)
    # `forge install` after `forge uninstall`: a new installationId, the same cloudId.
    again = ForgeInstall(forge_install.key, ids=(installation()[0], forge_install.cloud_id))
    me = client.get("/api/me", headers=again.headers(principal="acc-1"))
    assert me.status_code == 200 and me.get_json()["preferences"]["opted_out"] is True
    [after] = tenants(full_app)
    assert after.id == before.id and after.forge_installation_id == again.installation_id
    with full_app.extensions["inflow.db"].session() as session:
        assert preference(session, after.id, "acc-1").opted_out is True


def test_another_site_never_takes_over_a_tenant(forge_app: Flask,
                                                forge_install: ForgeInstall) -> None:
    client = forge_app.test_client()
    assert client.get("/api/echo", headers=forge_install.headers()).status_code == 200
    other = ForgeInstall(forge_install.key)  # new installation id and new cloud id
    assert client.get("/api/echo", headers=other.headers()).status_code == 200
    confluence = ForgeInstall(forge_install.key, product="confluence",
                              ids=(installation()[0], forge_install.cloud_id))
    assert client.get("/api/echo", headers=confluence.headers()).status_code == 200
    found = tenants(forge_app)
    assert len(found) == 3 and len({t.forge_installation_id for t in found}) == 3


def test_a_reinstall_revives_a_tenant_marked_uninstalled_before_its_purge(
        forge_app: Flask, forge_install: ForgeInstall) -> None:
    client = forge_app.test_client()
    assert client.get("/api/echo", headers=forge_install.headers()).status_code == 200
    db = forge_app.extensions["inflow.db"]
    with db.session() as session:
        tenant = session.scalar(select(Tenant))
        tenant.installed, tenant.uninstalled_at = False, utcnow() - timedelta(days=3)
    again = ForgeInstall(forge_install.key, ids=(installation()[0], forge_install.cloud_id))
    assert client.get("/api/echo", headers=again.headers()).status_code == 200
    with db.session() as session:
        [tenant] = session.scalars(select(Tenant)).all()
        assert tenant.installed and tenant.uninstalled_at is None
        assert session.scalar(select(func.count(Tenant.id))) == 1


def test_a_system_token_is_used_until_shortly_before_its_exp() -> None:
    now = utcnow()
    two_hours = pyjwt.encode({"exp": int(time.time()) + 7200}, "k" * 32, algorithm="HS256")
    assert timedelta(minutes=110) < token_expiry(two_hours, now) - now < timedelta(minutes=120)
    # Opaque tokens (no readable exp) get the conservative default; a far exp is capped.
    assert token_expiry("opaque", now) - now == timedelta(minutes=50)
    far = pyjwt.encode({"exp": int(time.time()) + 30 * 86400}, "k" * 32, algorithm="HS256")
    assert token_expiry(far, now) - now == timedelta(hours=4)


def test_a_call_without_the_user_token_an_action_needs_is_a_400_that_says_so(
        full_app: Flask, forge_install: ForgeInstall) -> None:
    # Forge sends x-forge-oauth-user only when the remote enables appUserToken; a link is made as the user.
    response = full_app.test_client().post(
        "/api/links", json={"key": "AMQ-1", "target_key": "AMQ-2", "link_type": "relates"},
        headers=forge_install.headers(principal="acc-7"))
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "forge_token_missing"
    assert "x-forge-oauth-user" in response.get_json()["message"]


def test_a_call_without_the_system_token_acts_with_the_stored_one_and_keeps_its_user_token(
        forge_app: Flask, forge_install: ForgeInstall) -> None:
    assert forge_app.test_client().get("/api/echo", headers=forge_install.headers()).status_code == 200
    tenant = tenants(forge_app)[0]  # the first call stored its system token
    call = ForgeInvocation(claims={}, app_id=APP_ID, installation_id=forge_install.installation_id,
                           cloud_id=forge_install.cloud_id, api_base_url=tenant.forge_api_base_url,
                           product="jira", site_url=None, principal="acc-7", user_token="user-token")
    with forge_app.test_request_context():
        g.forge = call
        client = client_for_tenant(tenant, "app")
        assert isinstance(client, ForgeHostClient)
        assert client.invocation.system_token == forge_install.system_token
        assert client.as_user("acc-7").invocation.user_token == "user-token"
        tenant.forge_system_token = None  # nothing stored either: said, not a 502
        with pytest.raises(NoForgeToken, match="x-forge-oauth-system"):
            client_for_tenant(tenant, "app")
