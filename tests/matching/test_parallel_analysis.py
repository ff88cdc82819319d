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
    default = 1 if (os.cpu_count() or 1) >= 2 else 0
    assert parallel.helper_count() == (default if count is None else count)


def test_small_batches_stay_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLOW_ANALYSIS_PROCESSES", "1")
    monkeypatch.setattr(parallel, "_executor", lambda helpers: pytest.fail("no helper for a small batch"))
    fields = [("disk full", "the disk is full", "", [])] * (parallel.MIN_BATCH - 1)
    assert parallel.vectors_of(fields) == parallel.encoded_vectors(fields)
