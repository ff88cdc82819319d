"""`inflow index` as a benchmark runs it: the search shards' writer in a process of its own."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from bench.common import ROOT, memory_mb, peak_rss_mb
from bench.servers import bench_env

POLL_S = 0.02
SAMPLE_S = 0.2  # between two looks at the indexer's memory (its own and its mapped files)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class IndexerProcess:
    """`inflow index` on a database, ready when constructed (its start-up is not timed)."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "plugin.cli", "index"], cwd=ROOT,
                                     env=bench_env(DATABASE_URL=url, INFLOW_LOG_LEVEL="warning"),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        if not self.proc.stdout.readline().startswith(b"indexing"):
            raise RuntimeError("inflow index did not start")
        self.cpu_at_start = _cpu_s(self.proc.pid)
        # The kernel's peak (VmHWM) adds both kinds: merges map the segments they read, page
        # cache shared with every process. Sampling tells how much of the peak was its own.
        self.peak = {"anon": 0.0, "file": 0.0}
        threading.Thread(target=self._sample, name="indexer-memory", daemon=True).start()

    def _sample(self) -> None:
        while self.proc.poll() is None:
            now = memory_mb(self.proc.pid)  # NaN once it ended, which max() passes over
            for kind in self.peak:
                self.peak[kind] = max(self.peak[kind], now[kind])
            time.sleep(SAMPLE_S)

    def wait_applied(self, db, tenant_id: int, timeout: float = 24 * 3600) -> float:
        """Wall time (epoch) at which the index had applied every change the site has now."""
        from plugin.search import current_seq, indexed_through

        deadline = time.monotonic() + timeout
        with db.session() as session:
            target = current_seq(session, tenant_id)
        while time.monotonic() < deadline:
            with db.session() as session:
                reached = indexed_through(session, tenant_id)
            if reached is not None and reached >= target:
                return time.time()
            if self.proc.poll() is not None:
                raise RuntimeError(f"inflow index exited with {self.proc.returncode}")
            time.sleep(POLL_S)
        raise TimeoutError("the index did not catch up")

    def report(self) -> dict[str, float]:
        """CPU seconds spent, peak resident memory (and the sampled peaks of its own and of its
        mapped files), and resident memory now (its own, mapped files)."""
        now = memory_mb(self.proc.pid)
        return {"cpu_s": _cpu_s(self.proc.pid) - self.cpu_at_start, "peak_rss_mb": peak_rss_mb(self.proc.pid),
                "peak_anon_mb": max(self.peak["anon"], now["anon"]),
                "peak_file_mb": max(self.peak["file"], now["file"]),
                "anon_mb": now["anon"], "file_mb": now["file"]}

    def stop(self) -> None:
        """SIGTERM and wait (it finishes its step and releases the shard)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
