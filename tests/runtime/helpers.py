"""Process helpers for the runtime tests: the `inflow` command, process trees, waiting."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFLOW = [str(Path(sys.executable).parent / "inflow")]  # the installed console script


def base_env(**extra: str) -> dict[str, str]:
    """The environment for an `inflow` subprocess: no REDIS_URL unless given, tests importable."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name: state, ppid, ...
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def parent(pid: int) -> int | None:
    """The parent pid of a process, None if it is gone."""
    stat = _stat(pid)
    return stat[1] if stat else None


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[1], []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {p for p in found if alive(p)}


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             poll: float = 0.2) -> object:
    """Poll until `predicate()` is truthy; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextlib.contextmanager
def worker_process(database_url: str, redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """`inflow worker` (no periodic jobs) on this database and Redis; killed with its children after."""
    proc = subprocess.Popen([sys.executable, "-m", "plugin.cli", "worker", "--schedule", "none"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url})
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # with rq's scheduler process: nothing left behind
        proc.wait(timeout=30)
