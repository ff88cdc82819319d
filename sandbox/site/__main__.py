"""`python -m sandbox.site`: the sandbox site as a process of its own (what `inflow demo` runs).

It prints `ready <url>` on stdout once it serves, then serves until SIGTERM or SIGINT.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from sandbox import datasets
from sandbox.site import catalog
from sandbox.site.server import FakeHost

KEEP_CALLS = 1000  # recent requests kept for inspection; a long-running site must not grow


def build_site(jira_set: str, issues: int | None, pages: int | None) -> FakeHost:
    """A site serving the first `issues` of a Jira set and `pages` Hyperledger pages.

    The person who did most on the issues administers their projects, so the demo can show the
    project admin page as the one person the site lets see it.
    """
    site = FakeHost(keep_calls=KEEP_CALLS)
    site.load_jira_dataset(jira_set, limit=issues)
    site.load_confluence_dataset(limit=pages)
    admin = catalog.jira_people(site)[0]["account_id"]
    for project in list(site.store.projects):
        site.set_project_admin(admin, project)
    return site


def main(argv: list[str] | None = None) -> int:
    """Load the data, serve on loopback, stop on a signal."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.site")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--jira", default="apache-activemq", choices=datasets.JIRA_SETS)
    parser.add_argument("--issues", type=int, default=None, help="the first N issues (all)")
    parser.add_argument("--pages", type=int, default=None, help="the first N pages (all)")
    parser.add_argument("--viewer", default=None,
                        help="where people's links to issues and pages lead (`inflow demo`'s /demo)")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    site = build_site(args.jira, args.issues, args.pages)
    site.viewer_url = args.viewer
    site.start(args.port)
    print(f"ready {site.url}", flush=True)
    try:
        stop.wait()
    finally:
        site.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
