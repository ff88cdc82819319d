"""A fresh process's full load of a tenant's index holds what syncing each change one by one holds."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone

import numpy as np
from sqlalchemy import select

from plugin.content.model import ContributionDoc
from plugin.matching import snapshot
from plugin.matching.index import DocInfo, TenantIndex, stable_argsort
from plugin.matching.store import delete_item, store_items
from plugin.models.content import Contribution, Item
from tests.matching.helpers import T0, database, doc

EAST = timezone(timedelta(hours=5, minutes=30))


def _docs(start: int, count: int) -> list:
    out = []
    for n in range(start, start + count):
        item = doc(f"APP-{n}", f"Disk {n % 4} full on node{n % 3}", f"error log rotation {n % 5} " * (1 + n % 3),
                   days=n, people={f"p{n % 4}": "assignee", f"p{(n + 1) % 5}": "commenter"})
        # Times with microseconds and a zone other than UTC, and one person in two roles.
        at = (T0 + timedelta(days=n, microseconds=123457 * n)).astimezone(EAST)
        extra = [ContributionDoc(f"p{n % 4}", "reporter", at), ContributionDoc("p9", "commenter", at)]
        out.append(replace(item, created=at, contributions=[*item.contributions, *extra]))
    return out


def _postings(index: TenantIndex) -> dict[str, set[tuple[int, tuple[int, ...]]]]:
    """Each term's live (item id, tf per field) pairs."""
    out = {}
    for term, tid in index.vocab.items():
        slots, tf = index.postings[tid].arrays()
        live = {(index.docs[s].item_id, tuple(int(v) for v in row))
                for s, row in zip(slots.tolist(), tf) if index.alive[s]}
        if live:
            out[term] = live
    return out


def _people(index: TenantIndex) -> dict[int, list[tuple]]:
    found = {}
    for item_id, slot in index.slot_of.items():
        pids, roles, at, times = index.people.entries(slot)
        found[item_id] = [(index.people.accounts[p], int(r), float(a), int(t))
                          for p, r, a, t in zip(pids.tolist(), roles, at, times)]
    return found


def test_full_load_matches_one_by_one_syncs(database_url: str) -> None:
    db, tenant = database(database_url)
    stepwise = TenantIndex(tenant)
    for start in range(0, 30, 7):
        with db.session() as s:
            store_items(s, tenant, _docs(start, 7))
            s.flush()
            stepwise.sync(s)
    with db.session() as s:
        store_items(s, tenant, _docs(3, 2))  # updates replace items' slots
        delete_item(s, tenant, "jira", "APP-5")
    with db.session() as s:
        stepwise.sync(s)
        loaded = TenantIndex(tenant)
        loaded.sync(s)
        created = dict(s.execute(select(Item.id, Item.created).where(Item.tenant_id == tenant)).all())
        times = s.execute(select(Contribution.item_id, Contribution.at)).all()
    assert loaded.count == stepwise.count == 34
    assert {d.item_id: d for d in loaded.docs} == {d.item_id: d for d in stepwise.docs if d is not None}
    assert {d.item_id: d.created for d in loaded.docs} == {i: c.timestamp() for i, c in created.items()}
    assert _postings(loaded) == _postings(stepwise)
    people = _people(loaded)
    assert people == _people(stepwise)
    assert {(i, a.timestamp()) for i, a in times} >= {(i, e[2]) for i, entries in people.items() for e in entries}
    for index in (loaded, stepwise):
        index._renorm()
    slot = {item_id: stepwise.slot_of[item_id] for item_id in loaded.slot_of}
    np.testing.assert_allclose(loaded.norms[[loaded.slot_of[i] for i in slot]],
                               stepwise.norms[list(slot.values())], rtol=1e-6)
    loaded_scores = loaded.score({"disk": 1.0, "error": 0.5}, {"disk": 1.0})
    assert loaded_scores[0].max() > 0 and loaded_scores[1].max() > 0
    _assert_snapshot_round_trip(loaded)
    db.dispose()


def _terms_by_item(index: TenantIndex) -> dict[int, list[str]]:
    names = {tid: term for term, tid in index.vocab.items()}
    return {item_id: [names[t] for t in index.slot_terms[slot].tolist()] for item_id, slot in index.slot_of.items()}


def _assert_snapshot_round_trip(index: TenantIndex) -> None:
    restored = snapshot.load(index.tenant_id, snapshot.dump(index))
    assert _postings(restored) == _postings(index) and _people(restored) == _people(index)
    assert _terms_by_item(restored) == _terms_by_item(index)
    assert restored.docs == index.docs and restored.count == index.count
    np.testing.assert_array_equal(restored.norms[:restored.count], index.norms[:index.count])
    restored.put(DocInfo(10_000, False, 0, 0, 1.0), {"t": {"disk": 2, "newterm": 1}})
    assert restored.vocab["newterm"] == len(restored.vocab) - 1


def test_stable_argsort_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    for size, high in ((0, 5), (1, 5), (1000, 7), (5000, 1 << 20)):
        keys = rng.integers(0, high, size)
        np.testing.assert_array_equal(stable_argsort(keys, high), np.argsort(keys, kind="stable"))
    big = rng.integers(0, 1 << 50, 100)  # too wide to pack with the positions: numpy's own sort
    np.testing.assert_array_equal(stable_argsort(big, 1 << 60), np.argsort(big, kind="stable"))


def test_full_load_of_an_empty_tenant(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    with db.session() as s:
        index = TenantIndex(tenant)
        index.sync(s)
        assert index.count == 0 and index.score({"disk": 1.0}, {})[0].size == 0
        assert snapshot.load(tenant, snapshot.dump(index)).count == 0
    db.dispose()
