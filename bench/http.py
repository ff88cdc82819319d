"""Signed requests as a host sends them, a keep-alive client, and the fake site behind a tenant."""
from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt as pyjwt

from bench.seed import TenantInfo


def host_token(tenant: TenantInfo, method: str, path: str, query: dict[str, str] | None = None,
               sub: str | None = "bench-viewer", ttl: int = 3600, context: bool = False) -> str:
    """An HS256 token for exactly this request, as Jira signs an iframe URL or a webhook."""
    from connect.jwt import CONTEXT_QSH, query_string_hash

    now = int(time.time())
    qsh = CONTEXT_QSH if context else query_string_hash(method, path, list((query or {}).items()))
    claims: dict[str, Any] = {"iss": tenant.client_key, "iat": now, "exp": now + ttl, "qsh": qsh}
    if sub:
        claims["sub"] = sub
    return pyjwt.encode(claims, tenant.secret, algorithm="HS256")


def signed_path(tenant: TenantInfo, path: str, query: dict[str, str], sub: str | None = "bench-viewer",
                ttl: int = 3600) -> str:
    """`path?query&jwt=…` — an iframe URL as the host renders it."""
    token = host_token(tenant, "GET", path, query, sub=sub, ttl=ttl)
    return f"{path}?{urlencode({**query, 'jwt': token})}"


class Client:
    """One keep-alive HTTP/1.1 connection to a loopback server (reconnects when closed)."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port, self.timeout = parts.hostname or "127.0.0.1", parts.port or 80, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.last_body = b""

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        """Send one request; returns (status, body, headers)."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                self.last_body = data
                return response.status, data, dict(response.getheaders())
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        return self.request("GET", path, headers=headers)

    def post_json(self, path: str, payload: Any,
                  headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        body = json.dumps(payload).encode()
        return self.request("POST", path, body=body,
                            headers={"Content-Type": "application/json", **(headers or {})})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def start_fake_site(issue_count: int, seed: int = 1, full_issues: list[dict[str, Any]] | None = None,
                    latency: float = 0.0, keep_calls: int | None = None):
    """The fake Jira site (sandbox/site) knowing every generated issue id, for permission checks.

    Permission checks only need each issue's id, key and project, so most issues are served as
    that skeleton; `full_issues` are served whole. `latency` is the seconds every REST call waits
    (a real site's round trip); `keep_calls` bounds the calls it remembers on long runs.
    """
    from bench import corpus
    from sandbox.site.server import FakeHost

    site = FakeHost(latency=latency, keep_calls=keep_calls, keep_alive=True).start()
    skeletons = []
    for index in range(issue_count):
        project = corpus.PROJECTS[index % len(corpus.PROJECTS)]
        skeletons.append({"id": str(100000 + index), "key": f"{project}-{index + 1}",
                          "fields": {"project": {"key": project, "name": project.title()},
                                     "summary": "", "issuetype": {"name": "Bug"}}})
    site.load_jira_issues(skeletons)
    if full_issues:
        site.load_jira_issues(full_issues)
    return site


def adopt_site(db, tenant: TenantInfo, site) -> TenantInfo:
    """Point the seeded tenant at the fake site: its client key, secret and base URL."""
    from connect.models import Tenant

    install = site.installs["jira"]
    with db.session() as session:
        row = session.get(Tenant, tenant.id)
        row.client_key, row.shared_secret = install.client_key, install.secret
        row.base_url = row.display_url = site.base_url("jira")
        row.oauth_client_id, row.cloud_id = install.oauth_client_id, f"cloud-{install.client_key}"
    return TenantInfo(tenant.id, install.client_key, install.secret, site.base_url("jira"))
