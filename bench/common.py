"""What every benchmark shares: result rows, percentiles, memory readings and sizes."""
from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def work_dir() -> Path:
    """Where benchmarks keep databases, logs and the seeded-database cache (INFLOW_BENCH_WORK)."""
    path = Path(os.environ.get("INFLOW_BENCH_WORK") or ROOT / "instance" / "bench")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Row:
    """One line of the results table: a figure, its unit, the target and whether it was met."""

    benchmark: str
    name: str
    value: float | None
    unit: str
    target: str = ""
    passed: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Size:
    """How big each benchmark runs: `default` is the issue's figures, `tiny` is the smoke test."""

    items: int = 100_000
    queries: int = 200
    updates: int = 200
    panel_requests: int = 300
    pipeline_events: int = 3_000
    latency_samples: int = 60
    backfill_issues: int = 20_000  # large enough that a cost growing with the tenant shows
    ace_seconds: int = 15
    ace_rate: int = 200
    ace_urls: int = 200
    scaling_steps: tuple[int, ...] = (10_000, 100_000)
    scaling_full_step: int = 1_000_000
    site_steps: tuple[int, ...] = (100, 1_000)  # many small sites in one shard
    site_full_step: int = 10_000
    site_items: int = 100
    traffic_items: int = 20_000  # the mixed-traffic site's learned issues
    traffic_burst: int = 1_000  # events of each burst (real history, comment-heavy)
    traffic_rate: float = 20.0  # replayed events/s in the steady phase
    traffic_seconds: float = 60.0  # how long the steady phase lasts
    traffic_views: float = 200 / 3  # issue views/s, each the three panels at once: 200 requests/s
    traffic_viewers: int = 50
    traffic_pool: int = 300  # issues the viewers open (half of them active in the replay)
    tiny: bool = False


DEFAULT = Size()
# Small enough for the smoke test: every code path runs, no figure means anything.
TINY = Size(items=40, queries=3, updates=3, panel_requests=3, pipeline_events=2,
            latency_samples=1, backfill_issues=20, ace_seconds=1, ace_rate=10, ace_urls=3,
            scaling_steps=(20,), scaling_full_step=40, site_steps=(2,), site_full_step=3, site_items=10,
            traffic_items=40, traffic_burst=12, traffic_rate=4, traffic_seconds=2, traffic_views=2,
            traffic_viewers=3, traffic_pool=6, tiny=True)


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 by the nearest-rank method (no interpolation: every figure was observed)."""
    if not samples:
        return {"p50": math.nan, "p95": math.nan, "p99": math.nan}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99)}


def latency_rows(benchmark: str, name: str, samples_s: Sequence[float], target_p: str = "p95",
                 target_ms: float | None = None, note: str = "") -> list[Row]:
    """Three rows (p50/p95/p99, in ms); the target, if any, is judged on `target_p`."""
    pct = percentiles([s * 1000 for s in samples_s])
    rows = []
    for p, value in pct.items():
        judged = target_ms is not None and p == target_p
        rows.append(Row(benchmark, f"{name} {p}", round(value, 2), "ms",
                        target=f"< {target_ms:g} ms" if judged else "",
                        passed=(value < target_ms) if judged else None,
                        note=note if p == "p50" else "", extra={"n": len(samples_s)}))
    return rows


def throughput_row(benchmark: str, name: str, count: int, seconds: float,
                   minimum: float | None = None, unit: str = "items/s", note: str = "") -> Row:
    """count/seconds as a throughput row, judged against an optional minimum."""
    rate = count / seconds if seconds > 0 else math.inf
    return Row(benchmark, name, round(rate, 1), unit,
               target=f">= {minimum:g} {unit}" if minimum is not None else "",
               passed=(rate >= minimum) if minimum is not None else None, note=note,
               extra={"count": count, "seconds": round(seconds, 3)})


def self_peak_rss_mb() -> float:
    """Peak resident set of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb(pid: int | None = None) -> float:
    """Resident set now, from /proc."""
    return _proc_status_kb(pid or os.getpid(), "VmRSS") / 1024


def memory_mb(pid: int | None = None) -> dict[str, float]:
    """Resident memory of a process now, split: anonymous (its own) and file-backed (mapped
    files such as the search index, shared with every process through the page cache)."""
    pid = pid or os.getpid()
    return {"rss": _proc_status_kb(pid, "VmRSS") / 1024, "anon": _proc_status_kb(pid, "RssAnon") / 1024,
            "file": _proc_status_kb(pid, "RssFile") / 1024}


def child_named(pid: int, title: str) -> int | None:
    """A child process of `pid` whose command line starts with `title` (as setproctitle sets it)."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        children = [int(c) for task in tasks for c in (task / "children").read_text().split()]
        for child in children:
            if Path(f"/proc/{child}/cmdline").read_bytes().startswith(title.encode()):
                return child
    except OSError:
        pass
    return None


def peak_rss_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of another process, from /proc."""
    return _proc_status_kb(pid, "VmHWM") / 1024


def _proc_status_kb(pid: int, key: str) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return math.nan


def children_of(pid: int) -> list[int]:
    """Direct child pids (e.g. the web server's workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def cpu_cores() -> int:
    """Cores this process may run on (what the figures were measured with)."""
    return len(os.sched_getaffinity(0))


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """`with stopwatch() as elapsed:` — elapsed() is seconds since the block began."""
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start


def timed_loop(count: int, body: Callable[[int], float | None], budget_s: float,
               minimum: int = 20) -> tuple[list[float], str]:
    """Run body(i) up to `count` times, stopping once `budget_s` is spent (after `minimum` runs).

    Returns the samples and a note saying how many ran, so a slow build still finishes the suite.
    """
    samples: list[float] = []
    start = time.monotonic()
    for i in range(count):
        if i >= minimum and time.monotonic() - start > budget_s:
            return samples, f"{len(samples)} of {count} samples (time budget {budget_s:.0f} s reached)"
        value = body(i)
        if value is not None:
            samples.append(value)
    return samples, f"{len(samples)} samples"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """Poll until predicate() is true; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the table."""
    import sys

    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
