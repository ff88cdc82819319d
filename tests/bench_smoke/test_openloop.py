"""The open-loop load generator retries, as real clients do, a GET whose idle connection was closed."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from bench.openloop import open_loop


class _ClosesAfterEachResponse(BaseHTTPRequestHandler):
    """Keep-alive in name only: the socket is closed after each response without saying so."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        status = 500 if self.path == "/broken" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _ClosesAfterEachResponse)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_a_connection_the_server_closed_while_idle_is_not_an_error(server: str) -> None:
    result = open_loop(server, ["/a", "/b"], rate=40, seconds=1)
    assert result.sent == 40
    assert len(result.latencies) == 40
    assert result.errors == 0 and result.non_2xx == 0


def test_error_statuses_are_still_counted(server: str) -> None:
    result = open_loop(server, ["/broken"], rate=20, seconds=1)
    assert result.non_2xx == 20 and result.errors == 0


def test_a_server_that_is_gone_counts_every_request_as_an_error() -> None:
    result = open_loop("http://127.0.0.1:9", ["/a"], rate=10, seconds=1, timeout=1)
    assert result.sent == 10 and result.errors == 10 and not result.latencies
