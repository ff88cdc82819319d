"""Term vectors of a large batch computed on more than one core: part here, part in helper processes.

Why: text analysis is most of the CPU a backfill page costs, and a backfill is one job on one
core while the machine has more. A page of at least MIN_BATCH items is split: helper processes
(INFLOW_ANALYSIS_PROCESSES, default 1 on a machine with two or more cores, 0 turns them off)
analyse their shares while this process analyses its own. The result is identical either way.
Small batches (webhook drains, single updates) never pay for the round trip.

By default a helper takes a share only when the machine had a core to spare since the last large
batch's analysis (`Spare`): when every core is busy (an indexer writing the shard in another
process, say), a helper only takes turns with them, and sending it the texts and taking back its
vectors is work the batch would not have done alone.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from plugin.config import Settings
from plugin.matching.packed import pack
from plugin.matching.vectors import term_vector, to_json

log = logging.getLogger(__name__)
MIN_BATCH = 64
Texts = tuple[str, str, str, list[str]]  # title, text, comments, meta: term_vector's arguments

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_owner = 0  # the pid that started it: a forked child must not use its parent's pool


def helper_count() -> int:
    """How many helper processes analyse text (INFLOW_ANALYSIS_PROCESSES)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    # Read at each large batch, not once per process: a batch takes far longer than this.
    configured = Settings.from_env().analysis_processes
    if configured is not None:
        return configured
    return 1 if (os.cpu_count() or 1) >= 2 and SPARE.had_core() else 0


def _cpu_times() -> tuple[float, float, int] | None:
    """(idle, total) CPU time of the machine so far in clock ticks, and its number of CPUs; None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            lines = stat.read().splitlines()
        ticks = [float(v) for v in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, IndexError, ValueError):
        return None
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return ticks[3] + ticks[4], sum(ticks), max(cpus, 1)


class Spare:
    """Whether the machine had a core to spare between the end of one large batch's analysis and the next.

    Measured while no helper works (it is idle between batches), so a helper's own use never
    makes the machine look busy. Unknown (the first batch, no /proc): spare, as before.
    """

    CORES = 0.75  # idle cores, on average, for a helper to have one to itself
    SHORTEST_S = 0.05  # a shorter gap says nothing

    def __init__(self, times: Callable[[], tuple[float, float, int] | None] = _cpu_times) -> None:
        self.times = times
        self._since: tuple[float, tuple[float, float, int] | None] | None = None

    def analysed(self) -> None:
        """A large batch's analysis ended: the gap to the next one is measured from here."""
        self._since = (time.monotonic(), self.times())

    def had_core(self) -> bool:
        """Whether at least `CORES` cores were idle on average since the last `analysed()`."""
        if self._since is None or self._since[1] is None or time.monotonic() - self._since[0] < self.SHORTEST_S:
            return True
        now = self.times()
        if now is None:
            return True
        (idle0, total0, _), (idle1, total1, cpus) = self._since[1], now
        if total1 <= total0:
            return True
        return (idle1 - idle0) / (total1 - total0) * cpus >= self.CORES


SPARE = Spare()


Encoded = tuple[str, bytes]  # a term vector as the store writes it: JSON text, and packed for ranking


def encoded_vectors(fields: list[Texts]) -> list[Encoded]:
    """Each item's term vector as stored (JSON text, and packed)."""
    return [(to_json(vector), pack(vector)) for vector in (term_vector(*texts) for texts in fields)]


def _executor(helpers: int) -> ProcessPoolExecutor:
    global _pool, _pool_owner
    with _lock:
        if _pool is None or _pool_owner != os.getpid():
            # fork (Linux's default for Python 3.11): spawn and forkserver re-run the main script
            # in each helper, which an unguarded script does not survive. A helper only analyses
            # text: it never uses the database connections or locks it inherits.
            _pool = ProcessPoolExecutor(helpers, mp_context=multiprocessing.get_context("fork"))
            _pool_owner = os.getpid()
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def vectors_of(fields: list[Texts]) -> list[Encoded]:
    """The items' encoded term vectors, in order; a large batch shared with helper processes."""
    if len(fields) < MIN_BATCH:
        return encoded_vectors(fields)
    try:
        return _shared(fields, helper_count())
    finally:
        SPARE.analysed()


def _shared(fields: list[Texts], helpers: int) -> list[Encoded]:
    """The vectors, `helpers` helper processes taking a share each."""
    if helpers == 0:
        return encoded_vectors(fields)
    pool = _executor(helpers)
    size = -(-len(fields) // (helpers + 1))
    shares = [fields[i:i + size] for i in range(0, len(fields), size)]
    try:
        futures: list[Future[list[Encoded]]] = [pool.submit(encoded_vectors, share) for share in shares[1:]]
    except (BrokenProcessPool, RuntimeError):
        _discard(pool)
        return encoded_vectors(fields)
    out = encoded_vectors(shares[0])
    for share, future in zip(shares[1:], futures, strict=True):
        try:
            out += future.result()
        except BrokenProcessPool:  # a helper died (killed, out of memory): do its share here
            log.warning("a text analysis process died; analysing its share here", exc_info=True)
            _discard(pool)
            out += encoded_vectors(share)
    return out
