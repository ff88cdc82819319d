"""The web server of `inflow web` and `inflow serve`: granian serving plugin.wsgi:app.

Why granian: it parses HTTP and keeps connections in Rust and calls the app from a pool of
Python threads, so a cached panel costs the app's own work and little else; under gunicorn's
threaded workers the server's Python code cost as much per request as the panel did.
Every value comes from the settings (README's variables).
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from typing import Any

from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.common import AbstractServer

from plugin.config import Settings

APP = "plugin.wsgi:app"
# Shorter than `inflow serve`'s stop timeout, so a graceful stop finishes before serve kills.
GRACEFUL_STOP_S = 15
# How long an idle keep-alive connection stays open (hyper closes one that sends no request headers
# within this): longer than the idle timeout of the load balancer in front (60 s on the common ones),
# so the server never closes a connection the balancer is just reusing, which fails that request.
KEEP_IDLE_MS = 75_000


class _ChosenThreads(logging.Filter):
    """Drops granian's warning that the threads outnumber the cores: they do on purpose, since a
    panel that is not cached waits on Atlassian's REST API (permission checks) in its thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Python threads" not in record.getMessage()


def _handler(target: str | None) -> dict[str, Any]:
    if target in (None, "-"):
        return {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {"class": "logging.FileHandler", "filename": target}


def log_config(settings: Settings) -> dict[str, Any]:
    """Server messages to stderr; the access log where INFLOW_ACCESS_LOG says (a file or "-")."""
    access = _handler(settings.access_log)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"threads": {"()": _ChosenThreads}},
        "formatters": {
            "generic": {"format": "%(asctime)s inflow-web %(levelname)s %(message)s"},
            "access": {"format": "%(message)s"},
        },
        "handlers": {
            "console": {**_handler("-"), "formatter": "generic", "filters": ["threads"]},
            "access": {**access, "formatter": "access"},
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": settings.log_level.upper(), "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def server(settings: Settings, host: str = "0.0.0.0") -> AbstractServer[Any]:
    """The configured server (not yet serving)."""
    return Granian(
        APP,
        address=host,
        port=settings.port,
        interface=Interfaces.WSGI,
        workers=settings.web_concurrency,
        blocking_threads=settings.web_threads,
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=KEEP_IDLE_MS),
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=log_config(settings),
        log_access=settings.access_log is not None,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_STOP_S,
        process_name="inflow-web",
    )


def empty_metrics_dir(settings: Settings) -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR: an earlier run's worker samples must not be summed in."""
    path = settings.prometheus_multiproc_dir
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Serve on $PORT until SIGINT/SIGTERM (each worker finishes the requests it holds)."""
    parser = argparse.ArgumentParser(prog="python -m plugin.runtime.web")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: every one)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    empty_metrics_dir(settings)
    server(settings, args.host).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
