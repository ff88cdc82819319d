"""gunicorn settings for `inflow web` and `inflow serve`, overridable from the environment."""
from __future__ import annotations

import os

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
# gunicorn's control socket has one default path per user, which several instances would share.
control_socket_disable = True
# Trust X-Forwarded-* only from the local tunnel or proxy unless told otherwise.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
