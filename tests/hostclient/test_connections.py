"""Connections to a site: shared by every client of a process, never by two processes; a site
that cannot be reached is a HostError like any other failure of the host."""
from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from connect.host_client import HostClient, HostError, HostUnreachable
from sandbox.site.server import DEFAULT_APP_KEY, FakeHost
from tests.hostclient.conftest import tenant_of

PATH = "/rest/api/3/project/search"


class _KeepAlive(BaseHTTPRequestHandler):
    """Answers every request with the caller's port, keeping the connection open as Atlassian does.

    (The fake site's server closes every connection after one response, so it cannot show reuse.)
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go as two writes: no delayed-ACK stall

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"port": self.client_address[1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def site() -> Iterator[SimpleNamespace]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield SimpleNamespace(base_url=f"http://127.0.0.1:{server.server_port}",
                          shared_secret="s" * 32, client_key="keep-alive-site")
    server.shutdown()
    server.server_close()


def _port(tenant: SimpleNamespace) -> int:
    """The local port of the connection a fresh client (one per request, as a web process makes) used."""
    return HostClient.for_tenant(tenant, DEFAULT_APP_KEY).get_json(PATH)["port"]


def test_clients_made_for_each_request_reuse_one_open_connection(site: SimpleNamespace) -> None:
    assert len({_port(site) for _ in range(5)}) == 1


def test_closing_one_session_leaves_the_others_connected(site: SimpleNamespace) -> None:
    before = _port(site)
    with HostClient.for_tenant(site, DEFAULT_APP_KEY).jira() as jira:  # the library closes on exit
        jira.get(PATH.lstrip("/"))
    assert _port(site) == before


def test_a_forked_process_opens_its_own_connection(site: SimpleNamespace) -> None:
    parent = _port(site)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one call, then leave without running the parent's teardown
        try:
            os.write(write, str(_port(site)).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = int(os.read(read, 32) or 0)
    os.close(read)
    assert child and child != parent
    assert _port(site) == parent  # and the parent's connection is still its own


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_site_that_cannot_be_reached_raises_host_error_with_status_0(fake_host: FakeHost) -> None:
    tenant = tenant_of(fake_host)
    tenant.base_url = f"http://127.0.0.1:{_closed_port()}"
    client = HostClient.for_tenant(tenant, DEFAULT_APP_KEY)
    with pytest.raises(HostUnreachable) as caught:
        client.request("GET", PATH)
    assert isinstance(caught.value, HostError) and caught.value.status == 0
    assert "ConnectionError" in caught.value.body
