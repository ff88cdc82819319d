"""`inflow backfill --tenant CLIENT_KEY`: run a tenant's backfill in the foreground."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from sqlalchemy import select

from connect.models import Tenant
from jobs.core import database
from jobs.pipeline import client_for, queue_suggestions
from plugin.pipeline import backfill


class ProgressBar:
    """A one-line progress bar on a terminal stream (plain lines when it is not a terminal)."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream, self.width, self.started = stream, width, time.monotonic()
        self.tty = stream.isatty()
        self.last_line = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        rate = done / max(time.monotonic() - self.started, 1e-6)
        if total:
            filled = min(self.width, int(self.width * done / total))
            text = (
                f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} items, {rate:.0f}/s"
            )
        else:
            text = f"{done} items, {rate:.0f}/s"
        if self.tty:
            self.stream.write("\r" + text)
        elif time.monotonic() - self.last_line >= 1.0 or (total and done >= total):
            self.stream.write(text + "\n")  # logs get a line a second, not a carriage-return blur
            self.last_line = time.monotonic()
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `backfill` subcommand."""
    parser = subparsers.add_parser("backfill", help="backfill a tenant's content in the foreground")
    parser.add_argument(
        "--tenant", required=True, metavar="CLIENT_KEY", help="the tenant's clientKey"
    )
    parser.add_argument(
        "--restart", action="store_true", help="start over instead of resuming from the checkpoint"
    )
    parser.set_defaults(func=cmd_backfill)


def cmd_backfill(args: argparse.Namespace) -> int:
    """Request and run the backfill with a progress bar on stderr; resumes a stopped one."""
    db = database()
    with db.session() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.client_key == args.tenant))
        if tenant_id is None:
            print(f"inflow backfill: no tenant with clientKey {args.tenant!r}", file=sys.stderr)
            return 2
        backfill.request_backfill(session, tenant_id, restart=args.restart)
    bar = ProgressBar(sys.stderr)
    try:
        ran = backfill.run_backfill(db, tenant_id, client_for, progress=bar)
    finally:
        bar.close()
    if not ran:
        print("inflow backfill: another backfill of this tenant is running", file=sys.stderr)
        return 1
    with db.session() as session:
        status = backfill.backfill_status(session, tenant_id)
    print(f"backfill done: {status['items_done']} items", file=sys.stderr)
    print(_suggestions_line(tenant_id), file=sys.stderr)
    return 0


def _suggestions_line(tenant_id: int) -> str:
    """Queue the items' suggestions for the workers, as a backfill job does, and say so."""
    try:
        if queue_suggestions(tenant_id):
            return "suggestions: queued for the workers"
        why = "no REDIS_URL set"
    except RuntimeError:
        why = "REDIS_URL unreachable"
    return (f"suggestions: not queued ({why}); the workers' reconciliation queues them within "
            "about an hour, and panels rank each item as it is viewed meanwhile")
