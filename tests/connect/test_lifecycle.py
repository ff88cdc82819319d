"""Signed install/uninstall (RS256 via the install-keys service) and enable/disable (HS256)."""
from __future__ import annotations

import time
import uuid
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connect import tenants
from connect.jwt import query_string_hash
from connect.lifecycle import set_lifecycle_handler
from connect.models import Tenant
from tests.conftest import BASE_URL
from tests.connect.conftest import (
    AtlassianSigner,
    KeyService,
    alg_none_token,
    install_payload,
    new_rsa_key,
)
from tests.jwt_helpers import host_token


def post_install(client: FlaskClient, token: str | None, payload: Any,
                 path: str = "/installed") -> Any:
    headers = {"Authorization": f"JWT {token}"} if token else {}
    return client.post(path, json=payload, headers=headers)


def stored(app: Flask, client_key: str) -> Tenant | None:
    with app.extensions["inflow.db"].session() as session:
        return tenants.get_by_client_key(session, client_key)


def fresh_key() -> str:
    return f"client-{uuid.uuid4().hex[:10]}"


def test_signed_install_is_accepted_and_stores_the_tenant(
        connect_app: Flask, signer: AtlassianSigner) -> None:
    client_key = fresh_key()
    payload = install_payload(client_key, product="confluence")
    response = post_install(connect_app.test_client(), signer.install_token(client_key), payload)
    assert response.status_code == 204
    tenant = stored(connect_app, client_key)
    assert tenant is not None and tenant.installed and tenant.uninstalled_at is None
    assert tenant.shared_secret == payload["sharedSecret"]
    assert tenant.base_url == payload["baseUrl"] and tenant.display_url == payload["displayUrl"]
    assert tenant.product_type == "confluence"
    assert tenant.oauth_client_id == payload["oauthClientId"]
    assert tenant.cloud_id == payload["cloudId"]


def test_install_key_is_fetched_once_per_kid_and_cached(
        keyed_app: Flask, signer: AtlassianSigner, key_service: KeyService) -> None:
    client = keyed_app.test_client()
    before = key_service.requests.count(signer.kid)
    for _ in range(3):
        client_key = fresh_key()
        response = post_install(client, signer.install_token(client_key), install_payload(client_key))
        assert response.status_code == 204
    assert key_service.requests.count(signer.kid) - before == 1


def test_valid_reinstall_rotates_the_shared_secret(
        keyed_app: Flask, signer: AtlassianSigner) -> None:
    client, client_key = keyed_app.test_client(), fresh_key()
    post_install(client, signer.install_token(client_key), install_payload(client_key, "first-" * 6))
    rotated = install_payload(client_key, "second-" * 6)
    assert post_install(client, signer.install_token(client_key), rotated).status_code == 204
    assert stored(keyed_app, client_key).shared_secret == "second-" * 6


def _forged_tokens(signer: AtlassianSigner, key_service: KeyService,
                   client_key: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": client_key, "aud": BASE_URL, "iat": now, "exp": now + 180,
              "qsh": query_string_hash("POST", "/installed", [])}
    other = new_rsa_key()
    return {
        "rs256_signed_by_another_key": pyjwt.encode(claims, other, algorithm="RS256",
                                                    headers={"kid": signer.kid}),
        "rs256_with_unknown_kid": pyjwt.encode(claims, other, algorithm="RS256",
                                               headers={"kid": str(uuid.uuid4())}),
        "hs256_with_the_stored_secret": pyjwt.encode(claims, "old-secret-" * 4, algorithm="HS256"),
        "alg_none": alg_none_token(claims),
        "wrong_audience": signer.install_token(client_key, aud="https://evil.example"),
        "mismatched_client_key": signer.install_token("someone-else"),
        "missing_kid": pyjwt.encode(claims, signer.key, algorithm="RS256"),
        "wrong_qsh": signer.install_token(client_key, qsh=query_string_hash("POST", "/x", [])),
        "expired": signer.install_token(client_key, iat=now - 4000, exp=now - 3600),
    }


FORGERIES = ["rs256_signed_by_another_key", "rs256_with_unknown_kid",
             "hs256_with_the_stored_secret", "alg_none", "wrong_audience",
             "mismatched_client_key", "missing_kid", "wrong_qsh", "expired"]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_reinstall_is_rejected_and_stored_secret_unchanged(
        keyed_app: Flask, signer: AtlassianSigner, key_service: KeyService, forgery: str) -> None:
    client, client_key = keyed_app.test_client(), fresh_key()
    original = install_payload(client_key, "old-secret-" * 4)
    assert post_install(client, signer.install_token(client_key), original).status_code == 204
    token = _forged_tokens(signer, key_service, client_key)[forgery]
    attack = install_payload(client_key, "attacker-secret-" * 3,
                             baseUrl="https://evil.example", displayUrl="https://evil.example")
    response = post_install(client, token, attack)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    tenant = stored(keyed_app, client_key)
    assert tenant.shared_secret == "old-secret-" * 4
    assert tenant.base_url == original["baseUrl"]


def test_install_without_jwt_is_rejected(keyed_app: Flask) -> None:
    client_key = fresh_key()
    response = post_install(keyed_app.test_client(), None, install_payload(client_key))
    assert response.status_code == 401
    assert stored(keyed_app, client_key) is None


def test_unreachable_install_keys_service_is_401_not_5xx(
        sqlite_url: str, signer: AtlassianSigner) -> None:
    from tests.conftest import build_app, free_port

    app = build_app(sqlite_url, INFLOW_INSTALL_KEYS_URL=f"http://127.0.0.1:{free_port()}/keys")
    client_key = fresh_key()
    response = post_install(app.test_client(), signer.install_token(client_key),
                            install_payload(client_key))
    assert response.status_code == 401
    assert stored(app, client_key) is None
    app.extensions["inflow.db"].dispose()


def test_malformed_install_json_is_400_and_invalid_payload_is_422(
        keyed_app: Flask, signer: AtlassianSigner) -> None:
    client, client_key = keyed_app.test_client(), fresh_key()
    headers = {"Authorization": f"JWT {signer.install_token(client_key)}",
               "Content-Type": "application/json"}
    assert client.post("/installed", data="{not json", headers=headers).status_code == 400
    missing_secret = install_payload(client_key)
    del missing_secret["sharedSecret"]
    response = client.post("/installed", json=missing_secret, headers=headers)
    assert response.status_code == 422
    assert "sharedSecret" in response.get_json()["fields"]
    bad_product = install_payload(client_key, productType="bitbucket")
    assert client.post("/installed", json=bad_product, headers=headers).status_code == 422
    assert stored(keyed_app, client_key) is None


def test_uninstall_marks_the_tenant_and_keeps_the_record(
        connect_app: Flask, signer: AtlassianSigner) -> None:
    client, client_key = connect_app.test_client(), fresh_key()
    post_install(client, signer.install_token(client_key), install_payload(client_key))
    payload = install_payload(client_key, eventType="uninstalled")
    del payload["sharedSecret"]
    token = signer.install_token(client_key, path="/uninstalled")
    assert post_install(client, token, payload, "/uninstalled").status_code == 204
    tenant = stored(connect_app, client_key)
    assert tenant is not None and not tenant.installed and tenant.uninstalled_at is not None
    assert tenant.shared_secret  # kept: the purge job decides when data goes


def test_removing_the_connect_app_a_tenant_moved_to_forge_from_keeps_it_installed(
        connect_app: Flask, signer: AtlassianSigner) -> None:
    client, client_key = connect_app.test_client(), fresh_key()
    post_install(client, signer.install_token(client_key), install_payload(client_key))
    with connect_app.extensions["inflow.db"].session() as session:  # Forge adopted it
        session.scalar(select(Tenant).where(Tenant.client_key == client_key)).host = "forge"
    payload = install_payload(client_key, eventType="uninstalled")
    del payload["sharedSecret"]
    token = signer.install_token(client_key, path="/uninstalled")
    assert post_install(client, token, payload, "/uninstalled").status_code == 204
    tenant = stored(connect_app, client_key)
    assert tenant is not None and tenant.installed and tenant.uninstalled_at is None


def test_uninstalled_tenant_can_no_longer_authenticate(
        keyed_app: Flask, signer: AtlassianSigner) -> None:
    client, client_key = keyed_app.test_client(), fresh_key()
    payload = install_payload(client_key, "kept-secret-" * 3)
    post_install(client, signer.install_token(client_key), payload)
    post_install(client, signer.install_token(client_key, path="/uninstalled"), payload,
                 "/uninstalled")
    token = host_token(client_key, payload["sharedSecret"], "POST", "/webhooks/jira/issue_created")
    response = client.post("/webhooks/jira/issue_created", json={"webhookEvent": "x"},
                           headers={"Authorization": f"JWT {token}"})
    assert response.status_code == 401


def test_forged_uninstall_is_rejected_and_tenant_stays_installed(
        keyed_app: Flask, signer: AtlassianSigner) -> None:
    client, client_key = keyed_app.test_client(), fresh_key()
    payload = install_payload(client_key, "a-secret-" * 4)
    post_install(client, signer.install_token(client_key), payload)
    forged = pyjwt.encode({"iss": client_key, "aud": BASE_URL, "iat": int(time.time()),
                           "exp": int(time.time()) + 60,
                           "qsh": query_string_hash("POST", "/uninstalled", [])},
                          payload["sharedSecret"], algorithm="HS256")
    assert post_install(client, forged, payload, "/uninstalled").status_code == 401
    assert stored(keyed_app, client_key).installed


def test_enable_and_disable_need_the_stored_secret(
        keyed_app: Flask, signer: AtlassianSigner) -> None:
    client, client_key = keyed_app.test_client(), fresh_key()
    payload = install_payload(client_key, "enable-secret-" * 3)
    post_install(client, signer.install_token(client_key), payload)
    for path, expected in (("/disabled", False), ("/enabled", True)):
        wrong = host_token(client_key, "not-the-secret-" * 3, "POST", path)
        assert post_install(client, wrong, payload, path).status_code == 401
        good = host_token(client_key, payload["sharedSecret"], "POST", path)
        assert post_install(client, good, payload, path).status_code == 204
        assert stored(keyed_app, client_key).enabled is expected


def test_enable_body_about_another_tenant_is_rejected(
        keyed_app: Flask, signer: AtlassianSigner) -> None:
    client, key_a, key_b = keyed_app.test_client(), fresh_key(), fresh_key()
    payload_a = install_payload(key_a, "secret-a-" * 4)
    payload_b = install_payload(key_b, "secret-b-" * 4)
    post_install(client, signer.install_token(key_a), payload_a)
    post_install(client, signer.install_token(key_b), payload_b)
    token_a = host_token(key_a, payload_a["sharedSecret"], "POST", "/disabled")
    assert post_install(client, token_a, payload_b, "/disabled").status_code == 401
    assert stored(keyed_app, key_b).enabled is True


def test_lifecycle_handler_is_called_after_install_and_uninstall(
        keyed_app: Flask, signer: AtlassianSigner) -> None:
    calls: list[tuple[str, int]] = []
    set_lifecycle_handler(keyed_app, lambda event, tenant_id: calls.append((event, tenant_id)))
    client, client_key = keyed_app.test_client(), fresh_key()
    payload = install_payload(client_key)
    post_install(client, signer.install_token(client_key), payload)
    post_install(client, signer.install_token(client_key, path="/uninstalled"), payload,
                 "/uninstalled")
    tenant_id = stored(keyed_app, client_key).id
    assert calls == [("installed", tenant_id), ("uninstalled", tenant_id)]


def test_failing_lifecycle_handler_does_not_fail_the_install(
        keyed_app: Flask, signer: AtlassianSigner) -> None:
    def broken(event: str, tenant_id: int) -> None:
        raise RuntimeError("backfill queue down")

    set_lifecycle_handler(keyed_app, broken)
    client_key = fresh_key()
    response = post_install(keyed_app.test_client(), signer.install_token(client_key),
                            install_payload(client_key))
    assert response.status_code == 204
    assert stored(keyed_app, client_key).installed
