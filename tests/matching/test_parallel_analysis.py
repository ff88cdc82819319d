"""A large page's term vectors are analysed on more than one core, with the same result."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from plugin.content.normalize import jira_issue_to_doc
from plugin.matching import parallel
from plugin.matching.store import store_items
from plugin.models.content import Item
from sandbox import datasets
from tests.matching.helpers import database


@pytest.fixture(scope="module")
def docs() -> list:
    """Real ZooKeeper issues, normalised as a backfill page would be."""
    issues = datasets.jira_issues("apache-zookeeper")[:300]
    return [jira_issue_to_doc(issue, "https://site.test") for issue in issues]


def _stored_terms(url: str, docs: list) -> dict[str, tuple[str, bytes, bytes]]:
    db, tenant = database(url)
    try:
        with db.session() as session:
            store_items(session, tenant, docs)
        with db.session() as session:
            rows = session.execute(select(Item.key, Item.terms, Item.packed_terms, Item.title_vector)).all()
            return {key: (terms, packed, title) for key, terms, packed, title in rows}
    finally:
        db.dispose()


def test_helpers_store_exactly_what_one_process_stores(docs: list, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLOW_ANALYSIS_PROCESSES", "0")
    alone = _stored_terms(f"sqlite:///{tmp_path / 'alone.db'}", docs)
    monkeypatch.setenv("INFLOW_ANALYSIS_PROCESSES", "2")
    shared = _stored_terms(f"sqlite:///{tmp_path / 'shared.db'}", docs)
    assert len(alone) == len(docs) and shared == alone


def test_a_helper_that_died_is_replaced_and_its_share_done_here(docs: list,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLOW_ANALYSIS_PROCESSES", "1")
    fields = [(d.title, d.text, "\n\n".join(d.comments), d.components + d.labels) for d in docs]
    expected = parallel.encoded_vectors(fields)
    assert parallel.vectors_of(fields) == expected
    pool = parallel._executor(1)
    for pid in list(pool._processes):  # the helper is killed, as an out-of-memory kill would
        os.kill(pid, signal.SIGKILL)
    assert parallel.vectors_of(fields) == expected  # its share done here
    assert parallel.vectors_of(fields) == expected  # and a new helper started
    assert parallel._executor(1) is not pool


@pytest.mark.parametrize(("value", "count"), [("0", 0), ("3", 3), ("", None), ("many", None)])
def test_helper_count_setting(value: str, count: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLOW_ANALYSIS_PROCESSES", value)
    monkeypatch.setattr(parallel, "SPARE", parallel.Spare())  # nothing measured yet: a core is spare
    default = 1 if (os.cpu_count() or 1) >= 2 else 0
    assert parallel.helper_count() == (default if count is None else count)


def test_small_batches_stay_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLOW_ANALYSIS_PROCESSES", "1")
    monkeypatch.setattr(parallel, "_executor", lambda helpers: pytest.fail("no helper for a small batch"))
    fields = [("disk full", "the disk is full", "", [])] * (parallel.MIN_BATCH - 1)
    assert parallel.vectors_of(fields) == parallel.encoded_vectors(fields)


class _Clock:
    """Machine CPU times as /proc/stat gives them: (idle, total) ticks, CPUs."""

    def __init__(self, cpus: int = 2) -> None:
        self.idle, self.total, self.cpus = 0.0, 0.0, cpus

    def run(self, seconds: float, busy_cores: float) -> None:
        self.total += seconds * 100 * self.cpus
        self.idle += seconds * 100 * (self.cpus - busy_cores)

    def __call__(self) -> tuple[float, float, int]:
        return self.idle, self.total, self.cpus


def test_a_helper_takes_a_share_only_when_a_core_was_idle_since_the_last_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, now = _Clock(), [1000.0]
    monkeypatch.setattr(parallel.time, "monotonic", lambda: now[0])
    spare = parallel.Spare(clock)
    assert spare.had_core()  # nothing measured yet
    spare.analysed()
    clock.run(1.0, busy_cores=1.0)  # this process stores the batch; the other core idles
    now[0] += 1.0
    assert spare.had_core()
    spare.analysed()
    clock.run(1.0, busy_cores=1.9)  # ... while another process (an indexer) keeps the other core busy
    now[0] += 1.0
    assert not spare.had_core()
    spare.analysed()
    now[0] += 0.01  # too short a gap to tell
    assert spare.had_core()


def test_without_cpu_times_a_core_counts_as_spare() -> None:
    spare = parallel.Spare(lambda: None)
    spare.analysed()
    assert spare.had_core()


def test_a_large_batch_marks_the_end_of_its_analysis(docs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLOW_ANALYSIS_PROCESSES", "0")
    marks: list[bool] = []
    monkeypatch.setattr(parallel.SPARE, "analysed", lambda: marks.append(True))
    fields = [(d.title, d.text, "", []) for d in docs[:parallel.MIN_BATCH]]
    parallel.vectors_of(fields)
    parallel.vectors_of(fields[:1])  # a small batch is no large batch's end
    assert marks == [True]
