"""gunicorn settings for `inflow web` and `inflow serve`, overridable from the environment."""
from __future__ import annotations

import os
import shutil

from plugin.config import Settings

settings = Settings.from_env()  # the variables are README's; plugin/config.py reads them all

bind = f"0.0.0.0:{settings.port}"
# Threads suit this app: a panel that is not cached waits on Atlassian's REST API (permission
# checks), the database and the search index, so more threads serve concurrent views. A cached
# panel costs the same CPU per request with sync, 1, 2 or 4 threads (within the noise of
# `make bench ONLY=ace`), so nothing is lost by them. The benchmarks run exactly this config.
worker_class = "gthread"
workers = settings.web_concurrency
threads = settings.web_threads
timeout = settings.web_timeout
# Shorter than `inflow serve`'s stop timeout, so a graceful stop finishes before serve kills.
graceful_timeout = 15
# Longer than the idle timeout of the load balancer or proxy in front (60 s on the common ones):
# the server must not close an idle keep-alive connection the client is just reusing, which
# fails that request (gthread keeps idle connections in its poller, not in a thread).
keepalive = 75
# INFLOW_ACCESS_LOG="" turns the access log off (a proxy or router in front often logs requests).
accesslog = settings.access_log
errorlog = "-"
loglevel = settings.log_level.lower()
proc_name = "inflow-web"
# gunicorn's control socket has one default path per user, which several instances would share.
control_socket_disable = True
# Trust X-Forwarded-* only from the local tunnel or proxy unless told otherwise.
forwarded_allow_ips = settings.forwarded_allow_ips


def on_starting(_server: object) -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR: an earlier run's worker samples must not be summed in."""
    path = settings.prometheus_multiproc_dir
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def child_exit(_server: object, worker: object) -> None:
    """Tell prometheus_client a web worker is gone (its live gauges stop counting)."""
    if settings.prometheus_multiproc_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
