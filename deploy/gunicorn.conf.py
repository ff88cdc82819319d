"""gunicorn settings for `inflow web` and `inflow serve`, overridable from the environment."""
from __future__ import annotations

import os
import shutil

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Threads suit this app: requests mostly wait on the database and on Atlassian's REST API.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("INFLOW_WEB_THREADS", "4"))
timeout = int(os.environ.get("INFLOW_WEB_TIMEOUT", "60"))
# Shorter than `inflow serve`'s stop timeout, so a graceful stop finishes before serve kills.
graceful_timeout = 15
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("INFLOW_LOG_LEVEL", "info").lower()
proc_name = "inflow-web"
# Load the app (and warm the matching indexes) once in the master; workers inherit it.
preload_app = True
# gunicorn's control socket has one default path per user, which several instances would share.
control_socket_disable = True
# Trust X-Forwarded-* only from the local tunnel or proxy unless told otherwise.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(_server: object) -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR: an earlier run's worker samples must not be summed in."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def post_fork(server: object, _worker: object) -> None:
    """Drop database connections inherited from the master: a socket must not be shared."""
    app = server.app.wsgi()  # type: ignore[attr-defined]
    app.extensions["inflow.db"].engine.dispose(close=False)


def child_exit(_server: object, worker: object) -> None:
    """Tell prometheus_client a web worker is gone (its live gauges stop counting)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
