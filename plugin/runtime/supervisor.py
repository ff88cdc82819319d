"""Runs child processes as one unit: any exit or signal stops them all, in tiers.

Each child runs in its own session (so its own process group): a Ctrl-C at the terminal reaches
only the supervisor, which forwards the signal to each child's leader process, waits for a
graceful exit, then kills the child's whole process group after a timeout.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("inflow.serve")

PR_SET_PDEATHSIG = 1
PATIENCE = 2.0  # seconds of a graceful stop before saying what it waits for


def die_with_parent() -> None:
    """On Linux, have the kernel send SIGTERM to this process when its parent dies.

    That way nothing outlives a supervisor that was itself killed with SIGKILL.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One supervised process; higher tiers are stopped first."""

    name: str
    proc: subprocess.Popen[bytes]
    tier: int

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Supervisor:
    """Starts children, waits for a signal or a child's exit, then stops every child."""

    stop_timeout: float = 20.0
    children: list[Child] = field(default_factory=list)
    signals: list[int] = field(default_factory=list)

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str], tier: int = 1,
              **popen: object) -> Child:
        """Start a child in its own session."""
        proc = subprocess.Popen(list(argv), env=env, start_new_session=True,
                                preexec_fn=die_with_parent, **popen)  # type: ignore[call-overload]
        child = Child(name, proc, tier)
        self.children.append(child)
        log.info("started %s (pid %d)", name, proc.pid)
        return child

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM ask for a stop; a second one makes the stop immediate."""
        def handler(signum: int, _frame: FrameType | None) -> None:
            self.signals.append(signum)

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def wait(self, poll: float = 0.2) -> Child | None:
        """Block until a signal arrives (None) or a child exits (that child)."""
        while not self.signals:
            for child in self.children:
                if child.proc.poll() is not None:
                    return child
            time.sleep(poll)
        return None

    def run(self) -> int:
        """Supervise until a signal or a child's exit; 0 after a requested stop, else non-zero."""
        exited = self.wait()
        if exited is None:
            log.info("received %s, stopping", signal.Signals(self.signals[0]).name)
            self.stop_all(self.signals[0])
            return 0
        code = exited.proc.returncode
        log.error("%s exited with status %s; stopping the others", exited.name, code)
        self.stop_all(signal.SIGTERM)
        return code if code and code > 0 else 1

    def stop_all(self, signum: int = signal.SIGTERM) -> None:
        """Stop every child, highest tier first; each tier's children stop concurrently."""
        for tier in sorted({c.tier for c in self.children}, reverse=True):
            self._stop_tier([c for c in self.children if c.tier == tier], signum)

    def _stop_tier(self, children: list[Child], signum: int) -> None:
        signals_before = len(self.signals)
        for child in children:
            if child.proc.poll() is None:
                _signal_process(child.pid, signum)
        started = time.monotonic()
        deadline, told = started + self.stop_timeout, False
        while any(c.proc.poll() is None for c in children):
            names = [c.name for c in children if c.proc.poll() is None]
            # Another Ctrl-C, or the timeout, skips the rest of the graceful stop.
            if time.monotonic() > deadline or len(self.signals) > signals_before:
                log.warning("killing %s", ", ".join(names))
                break
            if not told and time.monotonic() - started > PATIENCE:
                # A worker finishes the job it is running first, and a backfill or a fill runs
                # for minutes: say why nothing seems to happen, and how not to wait.
                log.warning("waiting up to %.0f s for %s to finish its work; press Ctrl-C again "
                            "to stop at once", self.stop_timeout, ", ".join(names))
                told = True
            time.sleep(0.1)
        for child in children:
            # Kill what is left of the group too: stray grandchildren must not outlive serve.
            _kill_group(child.pid)
            child.proc.wait()


def _signal_process(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
