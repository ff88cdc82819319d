"""`inflow serve | web | worker | migrate | status`: running Inflow's processes."""
from __future__ import annotations

import argparse
import logging
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from plugin.config import Settings
from plugin.runtime.supervisor import Child, Supervisor

log = logging.getLogger("inflow.serve")

WEB = [sys.executable, "-m", "plugin.runtime.web"]  # plugin/runtime/web.py
STOP_TIMEOUT = 25.0  # seconds a child gets to stop gracefully before it is killed


def _embedded_url_file(settings: Settings) -> Path:
    # `inflow serve` writes its embedded Valkey's URL here so `inflow status` can find it.
    return settings.valkey_dir / "serve.url"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the runtime subcommands."""
    serve = subparsers.add_parser(
        "serve", help="all in one: migrate, Valkey if needed, web and worker")
    serve.set_defaults(func=cmd_serve)
    web = subparsers.add_parser("web", help="the web server on 0.0.0.0:$PORT")
    web.set_defaults(func=cmd_web)
    worker = subparsers.add_parser(
        "worker", help="an rq worker with rq's scheduler (needs REDIS_URL)")
    worker.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    worker.add_argument("--name", help="worker name (default: inflow.<host>.<pid>)")
    worker.add_argument("--schedule", default="jobs.schedule:PERIODIC_JOBS",
                        help="periodic jobs as module:attribute, or 'none'")
    worker.set_defaults(func=cmd_worker)
    migrate = subparsers.add_parser("migrate", help="alembic upgrade (default: head)")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(func=cmd_migrate)
    status = subparsers.add_parser("status", help="queues, workers, scheduled and failed jobs")
    status.set_defaults(func=cmd_status)


def setup_logging(settings: Settings) -> None:
    """Log lines with time and source at INFLOW_LOG_LEVEL (once per process)."""
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def cmd_migrate(args: argparse.Namespace) -> int:
    """Upgrade the database schema."""
    settings = Settings.from_env()
    setup_logging(settings)
    _migrate(settings.database_url, args.revision)
    return 0


def _migrate(database_url: str, revision: str = "head") -> None:
    from plugin import migrations

    if not migrations.has_revisions():
        log.warning("no migrations in %s yet: run `make migration`", migrations.MIGRATIONS_DIR)
    migrations.upgrade(database_url, revision)


def cmd_web(_args: argparse.Namespace) -> int:
    """Serve plugin.wsgi:app on $PORT (plugin/runtime/web.py) until SIGINT/SIGTERM."""
    from plugin.runtime import web

    return web.main([])


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the rq worker (with the scheduler) until SIGINT/SIGTERM."""
    from jobs.worker import load_schedule, run_worker

    settings = Settings.from_env()
    setup_logging(settings)
    redis_url = settings.redis_url
    if not redis_url:
        print("inflow worker: REDIS_URL is not set (inflow serve starts an embedded Valkey)",
              file=sys.stderr)
        return 2
    return run_worker(redis_url, load_schedule(args.schedule), burst=args.burst, name=args.name)


def cmd_status(_args: argparse.Namespace) -> int:
    """Print queues, workers, scheduled and failed jobs."""
    from plugin.runtime.status import print_status

    settings = Settings.from_env()
    redis_url = settings.redis_url
    url_file = _embedded_url_file(settings)
    if not redis_url and url_file.exists():
        redis_url = url_file.read_text().strip()
    if not redis_url:
        print(f"inflow status: REDIS_URL is not set and no `inflow serve` is running (none left its "
              f"address in {url_file}); for `make demo`: INFLOW_VALKEY_DIR=instance/demo/valkey "
              f"inflow status", file=sys.stderr)
        return 2
    return print_status(redis_url)


def cmd_serve(_args: argparse.Namespace) -> int:
    """Migrate, then run Valkey (when REDIS_URL is unset), the web server and the worker together."""
    supervisor = Supervisor(stop_timeout=STOP_TIMEOUT)
    supervisor.install_signal_handlers()
    env = dict(os.environ)  # noqa: TID251  (copied for the children, which read their own)
    return serve(supervisor, env)


def serve(supervisor: Supervisor, env: dict[str, str],
          started: Callable[[dict[str, str]], None] | None = None) -> int:
    """What `inflow serve` runs, with `env` as the environment, under a supervisor that may
    already hold other children.

    `started(env)` is called once the web server and the worker are spawned (`inflow demo`
    installs its sandbox site then); the supervision starts when it returns.
    """
    settings = Settings.from_env(env)
    setup_logging(settings)
    if not port_free(settings.port):
        log.error("port %s is in use (another `make run` or `make demo`?): stop it, or set PORT "
                  "to a free port", settings.port)
        return 2
    _migrate(settings.database_url)
    try:
        if not settings.redis_url:
            env["REDIS_URL"] = _start_valkey(supervisor, env, settings)
        if supervisor.signals:  # Ctrl-C while starting
            supervisor.stop_all()
            return 0
        _start_app(supervisor, env, settings)
        if started is not None:
            started(env)
        return supervisor.run()
    except BaseException:
        supervisor.stop_all()
        raise
    finally:
        if not settings.redis_url:
            _embedded_url_file(settings).unlink(missing_ok=True)


def port_free(port: int) -> bool:
    """Whether a server could listen on the port now (the web server would otherwise fail to start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no listener
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _start_app(supervisor: Supervisor, env: dict[str, str], settings: Settings) -> None:
    supervisor.spawn("web", WEB, env, tier=1)
    supervisor.spawn("worker", [sys.executable, "-m", "plugin.runtime_cli", "worker"], env, tier=1)
    log.info("Inflow on http://0.0.0.0:%s (REDIS_URL %s)",
             settings.port, env["REDIS_URL"])


def _start_valkey(supervisor: Supervisor, env: dict[str, str], settings: Settings) -> str:
    """Start the embedded Valkey (stopped last) and return its URL."""
    data_dir = settings.valkey_dir
    argv = [sys.executable, "-m", "plugin.runtime.valkey", "--dir", str(data_dir)]
    if settings.valkey_port is not None:
        argv += ["--port", str(settings.valkey_port)]
    child = supervisor.spawn("valkey", argv, env, tier=0, stdout=subprocess.PIPE)
    url = await_ready(child, timeout=30.0)
    _embedded_url_file(settings).write_text(url + "\n")
    log.info("embedded Valkey at %s, data in %s", url, data_dir)
    return url


def await_ready(child: Child, timeout: float) -> str:
    """The URL from the child's `ready <url>` line; raises if it exits or times out first."""
    assert child.proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = child.proc.stdout.readline().decode().strip()
                if line.startswith("ready "):
                    return line.split(" ", 1)[1]
                if not line and child.proc.poll() is not None:
                    break
    raise RuntimeError(f"{child.name} did not start (exit status {child.proc.poll()})")


def main(argv: list[str] | None = None) -> int:
    """`python -m plugin.runtime_cli`: these commands alone (serve uses it to start the worker)."""
    parser = argparse.ArgumentParser(prog="inflow")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
