"""`inflow serve` as a real process: serves the app, and takes every child down with it."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import free_port
from tests.runtime.helpers import INFLOW, ROOT, alive, base_env, descendants, parent, wait_for

# wrapper + valkey-server, web server + its worker, rq worker + its scheduler process
EXPECTED_PROCESSES = 6


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`inflow serve` on a free port, a fresh SQLite file and its own embedded Valkey."""
    port = free_port()
    env = base_env(PORT=str(port), DATABASE_URL=f"sqlite:///{tmp_path / 'inflow.db'}",
                   INFLOW_VALKEY_DIR=str(tmp_path / "valkey"), WEB_CONCURRENCY="1",
                   INFLOW_BASE_URL=f"http://127.0.0.1:{port}")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*INFLOW, "serve"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    served = Served(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_for(lambda: _healthy(served.url) or proc.poll() is not None, 60, "inflow serve")
        assert proc.poll() is None, served.output()
        wait_for(lambda: len(descendants(proc.pid)) >= EXPECTED_PROCESSES, 30,
                 "every child process of serve")
        yield served
    finally:
        for pid in descendants(proc.pid) | {proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_serve_answers_health_and_both_descriptors(served: Served) -> None:
    health = requests.get(f"{served.url}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.json()["database"]["ok"] and health.json()["redis"]["ok"]
    assert health.json()["redis"]["queues"] == {"inflow": 0, "inflow-refresh": 0,
                                                 "inflow-backlog": 0, "inflow-bulk": 0}
    for product in ("jira", "confluence"):
        response = requests.get(f"{served.url}/{product}/atlassian-connect.json", timeout=5)
        assert response.status_code == 200, f"{product}: {response.status_code}"
        assert response.json()["baseUrl"] == served.url


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_serve_and_every_child_within_bounded_time(served: Served,
                                                                signum: int) -> None:
    children = descendants(served.proc.pid)
    assert len(children) >= EXPECTED_PROCESSES
    served.proc.send_signal(signum)
    assert served.proc.wait(timeout=30) == 0, served.output()
    wait_for(lambda: not any(alive(pid) for pid in children), 5, "children to be gone")
    assert [pid for pid in children if alive(pid)] == []


def test_a_dying_child_stops_the_rest_and_serve_exits_nonzero(served: Served) -> None:
    children = descendants(served.proc.pid)
    web_master = next(pid for pid in children if parent(pid) == served.proc.pid
                      and b"inflow-web" in Path(f"/proc/{pid}/cmdline").read_bytes())
    os.kill(web_master, signal.SIGKILL)
    assert served.proc.wait(timeout=30) != 0
    wait_for(lambda: not any(alive(pid) for pid in children), 5, "children to be gone")
    assert "web exited" in served.output()


def test_serve_on_a_port_in_use_says_so_and_exits_2(tmp_path: Path, caplog: Any) -> None:
    import socket

    from plugin.runtime.supervisor import Supervisor
    from plugin.runtime_cli import serve

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
        assert serve(Supervisor(), env) == 2
    assert f"port {port} is in use" in caplog.text and "set PORT" in caplog.text


def test_a_child_slow_to_stop_is_named_and_a_second_signal_stops_it_at_once(caplog: Any) -> None:
    from plugin.runtime.supervisor import PATIENCE, Supervisor

    supervisor = Supervisor(stop_timeout=60.0)
    busy = ("import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: None); "
            "print('ready', flush=True); time.sleep(120)")  # a worker finishing a long job
    child = supervisor.spawn("worker", [sys.executable, "-c", busy], dict(os.environ), stdout=subprocess.PIPE)
    assert child.proc.stdout is not None and child.proc.stdout.readline() == b"ready\n"

    def second_signal() -> None:
        wait_for(lambda: "waiting up to" in caplog.text, 30, "the stop's explanation")
        supervisor.signals.append(signal.SIGINT)  # what the handler records of a second Ctrl-C

    started = time.monotonic()
    with caplog.at_level("WARNING", logger="inflow.serve"):
        pressed = threading.Thread(target=second_signal)
        pressed.start()
        supervisor.stop_all()
        pressed.join()
    assert "waiting up to 60 s for worker to finish its work; press Ctrl-C again to stop at once" in caplog.text
    assert PATIENCE <= time.monotonic() - started < 30 and child.proc.returncode is not None
