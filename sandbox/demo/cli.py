"""`inflow demo`: Inflow installed into a sandbox site of real public data, at /demo.

It runs what `inflow serve` runs (migrations, embedded Valkey, the web server, a worker with its search
indexer) on a data directory of its own, beside the sandbox site as a fourth process. The site
installs Inflow with a signed install, Inflow backfills it with its real backfill job, and the
command says when /demo shows suggestions. Each run starts afresh: the sandbox keeps its content
in memory, so a database left from an earlier run would point at a site that is gone.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from connect.db import Database
from plugin.config import PROJECT_ROOT, Settings
from plugin.runtime.supervisor import Supervisor
from plugin.runtime_cli import STOP_TIMEOUT, await_ready, serve, setup_logging
from sandbox.demo import readiness
from sandbox.demo.site_client import SiteClient

DEFAULT_DIR = PROJECT_ROOT / "instance" / "demo"
# Everything (0): the whole set backfills in about 20 s on a 2-core machine (see the commit).
DEFAULT_ISSUES = 0
DEFAULT_PAGES = 0
BACKFILL_TIMEOUT = 600.0
READY_TIMEOUT = 120.0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `demo` subcommand."""
    parser = subparsers.add_parser(
        "demo", help="Inflow on a sandbox site of real public data, at http://localhost:8000/demo")
    parser.add_argument("--issues", type=int, default=DEFAULT_ISSUES,
                        help="the first N Apache ActiveMQ issues (0: all 4,649)")
    parser.add_argument("--pages", type=int, default=DEFAULT_PAGES,
                        help="the first N Hyperledger wiki pages (0: all 1,784)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                        help="the demo's data directory, emptied at start (instance/demo)")
    parser.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the sandbox site and Inflow, install, backfill, then serve until stopped."""
    started = time.monotonic()
    settings = Settings.from_env()
    setup_logging(settings)
    port = settings.port
    if not _port_free(port):
        print(f"inflow demo: port {port} is in use (is `make run` running?); stop it or set "
              "PORT", file=sys.stderr)
        return 2
    if args.issues < 0 or args.pages < 0:
        print("inflow demo: --issues and --pages must be 0 (all) or more", file=sys.stderr)
        return 2
    supervisor = Supervisor(stop_timeout=STOP_TIMEOUT)
    supervisor.install_signal_handlers()
    env = dict(os.environ)  # noqa: TID251  (copied for the children, which read their own)
    try:
        site_url = _start_site(supervisor, env, args.issues, args.pages, f"http://localhost:{port}/demo")
    except BaseException:
        supervisor.stop_all()
        raise
    env = demo_env(env, args.dir, site_url, port)
    app_url = env["INFLOW_BASE_URL"]

    def when_started(_env: dict[str, str]) -> None:
        _get_ready(supervisor, app_url, SiteClient(site_url), env["DATABASE_URL"], started,
                   sys.stdout)

    return serve(supervisor, env, when_started)


def demo_env(env: dict[str, str], folder: Path, site_url: str, port: int) -> dict[str, str]:
    """The environment of the demo's processes: embedded defaults in `folder`, the site trusted.

    The install keys and the OAuth server are the sandbox's, so this app accepts installs from
    the sandbox and from nothing else: the demo never shares a database with a real site.
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    env.pop("REDIS_URL", None)
    env.update({
        "PORT": str(port),
        "INFLOW_BASE_URL": f"http://localhost:{port}",
        "DATABASE_URL": f"sqlite:///{folder / 'inflow.db'}",
        "INFLOW_INDEX_DIR": str(folder / "index"),
        "INFLOW_VALKEY_DIR": str(folder / "valkey"),
        "INFLOW_INSTALL_KEYS_URL": f"{site_url}/_sandbox/install-keys",
        "INFLOW_AUTH_SERVER_URL": site_url,
        "INFLOW_SANDBOX_URL": site_url,
    })
    return env


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _start_site(supervisor: Supervisor, env: dict[str, str], issues: int, pages: int,
                viewer: str) -> str:
    argv = [sys.executable, "-m", "sandbox.site", "--viewer", viewer]
    argv += ["--issues", str(issues)] if issues else []
    argv += ["--pages", str(pages)] if pages else []
    child = supervisor.spawn("sandbox site", argv, env, tier=0, stdout=subprocess.PIPE)
    return await_ready(child, timeout=60.0)


def _get_ready(supervisor: Supervisor, app_url: str, site: SiteClient, database_url: str,
               started: float, out: TextIO) -> None:
    """Install, wait for the backfills and for suggestions, and say where the demo is."""
    def alive() -> bool:
        return not supervisor.signals and all(c.proc.poll() is None for c in supervisor.children)

    try:
        readiness.wait_for("the app", lambda: readiness.app_answers(app_url), alive, 60.0)
        catalog = site.catalog()
        out.write(f"Sandbox site at {site.url}: {catalog['jira']['issue_count']:,} Apache "
                  f"ActiveMQ issues, {catalog['confluence']['page_count']:,} Hyperledger wiki "
                  "pages. Installing Inflow (signed installs)...\n")
        out.flush()
        _backfill(app_url, site, database_url, alive, out)
        _panels_fill(app_url, site, catalog, alive)
    except readiness.NotReady as exc:
        if not supervisor.signals:  # after Ctrl-C there is nothing to explain
            out.write(f"inflow demo: {exc}; the processes' logs above say why\n")
        return  # the supervisor stops everything if a process died, or serves what there is
    out.write(f"\nInflow's demo is ready after {time.monotonic() - started:.0f} s: "
              f"{app_url}/demo   (Ctrl-C stops it)\n\n")
    out.flush()


def _backfill(app_url: str, site: SiteClient, database_url: str, alive: readiness.Alive,
              out: TextIO) -> None:
    installed = site.install(app_url)
    db = Database(database_url)
    try:
        tenants = readiness.wait_for("the installs", lambda: readiness.tenant_ids(db, installed),
                                     alive, 30.0)
        last = [0.0]

        def done() -> bool:
            states = readiness.backfills(db, tenants)
            if time.monotonic() - last[0] >= 5.0:
                readiness.report_backfills(out, states)
                last[0] = time.monotonic()
            return all(s["status"] == "done" for s in states.values())

        readiness.wait_for("the backfills", done, alive, BACKFILL_TIMEOUT)
    finally:
        db.dispose()


def _panels_fill(app_url: str, site: SiteClient, catalog: dict[str, object],
                 alive: readiness.Alive) -> None:
    """The first issue of the picker shows experts and similar issues (the index caught up)."""
    jira = catalog["jira"]
    assert isinstance(jira, dict)
    key, viewer = jira["issues"][0]["key"], jira["people"][0]["account_id"]
    for panel, field in (("experts", "experts"), ("reuse", "suggestions")):
        readiness.wait_for(f"the {panel} panel", lambda p=panel, f=field: readiness.panel_has(
            app_url, site, key, p, f, viewer), alive, READY_TIMEOUT)
