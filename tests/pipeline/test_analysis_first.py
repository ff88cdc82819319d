"""A drain analyses its batch's items before the batch's first write (SQLite's only write lock)."""

from __future__ import annotations

from typing import Any

from jobs import pipeline as jobs
from plugin.matching import store
from plugin.pipeline import events
from tests.pipeline.test_drain import titles, updates


def test_a_drains_items_are_analysed_before_its_first_write_and_stored_as_analysed(
    sqlite_url: str, make_site: Any, monkeypatch: Any
) -> None:
    site = make_site(sqlite_url)
    _, newest = updates(site, 40, 8)
    calls: list[tuple[str, int]] = []
    analyse, mark = store._item_rows, events._mark_processed

    def counted_rows(session: Any, tenant_id: int, docs: list[Any]) -> Any:
        calls.append(("analyse", len(docs)))
        return analyse(session, tenant_id, docs)

    def counted_mark(session: Any, event_ids: list[int]) -> Any:
        calls.append(("write", len(event_ids)))
        return mark(session, event_ids)

    monkeypatch.setattr(store, "_item_rows", counted_rows)
    monkeypatch.setattr(events, "_mark_processed", counted_mark)

    assert jobs.drain_events(site.tenant_id) == 40

    batches = [calls[n:n + 3] for n in range(0, len(calls), 3)]
    # Per batch: its items analysed, then the first write, then nothing left to analyse.
    assert all([kind for kind, _ in batch] == ["analyse", "write", "analyse"] for batch in batches)
    assert all(batch[0][1] > 0 and batch[2][1] == 0 for batch in batches)
    assert titles(site) == newest
