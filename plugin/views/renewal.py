"""Cached views renewed in the background shortly before they expire, so viewers never wait for it.

Why: a cached view lives until the first host answer it used expires (permissions live 60 s).
The next view after that asked the host again, a REST call of 100-300 ms, and Jira shows an
issue only when its slowest panel is there. A view served from the cache within `AHEAD`
seconds of its expiry is renewed here, off the request: the same request, through the same
routes and checks, with the answers about to expire asked again (`Watch.renew_before`). When
only permission answers were about to expire and the host gives the same ones, or the view asked
none, the view is kept longer without rendering it (`panel_cache.extend`); otherwise it is
rendered again. The renewed
view replaces the old one only when it succeeds; nothing is shown from answers older than they
may be, and a renewal records no adoption event.
"""
from __future__ import annotations

import io
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, request

log = logging.getLogger(__name__)

AHEAD = 30.0  # seconds before a cached view expires from which a view of it renews it
THREADS = 8  # renewals at once per process: each is mostly a wait for the host (`extend`)
MAX_PENDING = 256  # views waiting for renewal per process; beyond it, they renew on their next view
ENVIRON_KEY = "inflow.renewal"

_lock = threading.Lock()
_pending: set[Any] = set()
_executor: ThreadPoolExecutor | None = None
_owner = 0  # the pid that started the executor: a forked child starts its own


def renewing() -> bool:
    """Whether the current request renews a cached view (rather than answers a viewer)."""
    return bool(request.environ.get(ENVIRON_KEY))


def ahead(app: Flask, environ: dict[str, Any], key: Any) -> None:
    """Renew the cached view (known by `key`) that `environ` asked for in the background, once."""
    if environ.get("REQUEST_METHOD") != "GET":  # views are read; nothing that writes is sent twice
        return
    with _lock:
        if key in _pending or len(_pending) >= MAX_PENDING:
            return
        _pending.add(key)
        executor = _started()
    environ = {**environ, ENVIRON_KEY: True, "wsgi.input": io.BytesIO(b"")}
    executor.submit(_renew, app, environ, key)


def _started() -> ThreadPoolExecutor:
    global _executor, _owner
    if _executor is None or _owner != os.getpid():
        _executor = ThreadPoolExecutor(THREADS, thread_name_prefix="inflow-renewal")
        _owner = os.getpid()
    return _executor


def _renew(app: Flask, environ: dict[str, Any], key: Any) -> None:
    try:
        with app.request_context(environ):
            response = app.full_dispatch_request()
            if response.status_code != 200:
                log.info("renewing a cached view answered %s; it renews on a later view",
                         response.status_code)
    except Exception:  # noqa: BLE001  (the cached view expires as it would have; the next view renders)
        log.exception("renewing a cached view failed")
    finally:
        with _lock:
            _pending.discard(key)


def wait_idle(timeout: float = 10.0) -> bool:
    """Wait until no renewal is pending (tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _lock:
            if not _pending:
                return True
        time.sleep(0.01)
    return False
