"""Security headers on every response, JSON errors only where clients expect JSON."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from connect.headers import content_security_policy, site_origin
from tests.conftest import TenantAuth

ANY_ATLASSIAN = "frame-ancestors 'self' https://*.atlassian.net https://*.jira.com"


def assert_security_headers(response: Any) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp
    assert "script-src 'self' https://connect-cdn.atl-paas.net" in csp
    assert "default-src 'self'" in csp and "object-src 'none'" in csp
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Frame-Options" not in response.headers


def test_descriptor_response_has_security_headers_and_no_store(client: FlaskClient) -> None:
    response = client.get("/jira/atlassian-connect.json")
    assert_security_headers(response)
    assert ANY_ATLASSIAN in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_lifecycle_response_has_security_headers(client: FlaskClient) -> None:
    response = client.post("/installed", json={})
    assert response.status_code == 401
    assert_security_headers(response)
    assert response.headers["Cache-Control"] == "no-store"


def test_authenticated_webhook_response_frames_only_the_tenant_site(
        client: FlaskClient, tenant: TenantAuth) -> None:
    path = "/webhooks/jira/issue_created"
    response = client.post(path, json={"webhookEvent": "jira:issue_created"},
                           headers=tenant.headers("POST", path))
    assert response.status_code == 202
    assert_security_headers(response)
    csp = response.headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {tenant.base_url}" in csp
    assert "*.atlassian.net" not in csp
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/nothing-here", 404),
    ("GET", "/webhooks/jira/issue_created", 405),
    ("POST", "/webhooks/jira/issue_created", 401),
])
def test_json_endpoint_errors_are_json_with_security_headers(
        client: FlaskClient, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.is_json and response.get_json()["error"]
    assert_security_headers(response)


def test_html_error_pages_are_not_turned_into_json(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert_security_headers(response)


def test_frame_ancestors_use_clean_origins_of_the_tenant_sites(app: Flask) -> None:
    class Site:
        base_url = "https://acme.atlassian.net/wiki"
        display_url = "https://wiki.acme.com"

    with app.test_request_context("/"):
        g.tenant = Site()
        policy = content_security_policy()
    assert "frame-ancestors 'self' https://acme.atlassian.net https://wiki.acme.com" in policy


def test_hostile_stored_site_urls_never_reach_the_header() -> None:
    assert site_origin("https://a.atlassian.net/wiki") == "https://a.atlassian.net"
    assert site_origin("javascript:alert(1)") is None
    assert site_origin("https://evil.example; script-src *") is None
    assert site_origin("https://a.atlassian.net\r\nX-Frame-Options: DENY") is None
    assert site_origin(None) is None


def test_locked_database_is_503_with_retry_after_not_500(app: Flask) -> None:
    from sqlalchemy.exc import OperationalError

    @app.get("/__locked")
    def locked() -> str:
        raise OperationalError("INSERT INTO panel_events", {}, Exception("database is locked"))

    response = app.test_client().get("/__locked")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Cache-Control"] == "no-store"
