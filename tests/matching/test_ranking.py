"""Ranking properties: exclusions, permissions, opt-outs, the asker, the confidence floor, load."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from connect.db import Database
from plugin.matching.service import suggest_experts, suggest_reuse
from plugin.matching.store import get_item, upsert_item
from tests.matching.helpers import database, doc, indexed, store


@pytest.fixture
def corpus(sqlite_url: str) -> tuple[Database, int]:
    db, tenant = database(sqlite_url)
    with db.session() as s:
        upsert_item(s, tenant, doc("APP-1", "Session timeout logs users out", "idle sessions expire",
                                   days=1, people={"ann": "assignee", "carl": "commenter"},
                                   resolution="Fixed"))
        upsert_item(s, tenant, doc("APP-2", "Session timeout too short", "users logged out when idle",
                                   days=2, people={"bob": "assignee", "ann": "commenter"}))
        upsert_item(s, tenant, doc("APP-3", "Session timeout setting ignored", "timeout config", days=3,
                                   people={"dan": "assignee"}, resolution="Fixed"))
        upsert_item(s, tenant, doc("APP-4", "Session timeout logs users out", "idle session expires",
                                   days=4, links=["APP-3"], people={"ann": "reporter"}))
        upsert_item(s, tenant, doc("APP-9", "Coffee machine broken", "no espresso", days=5,
                                   people={"zed": "assignee"}))
    indexed(db)
    return db, tenant


def test_reuse_excludes_the_item_itself_and_its_linked_items(corpus: tuple[Database, int]) -> None:
    db, tenant = corpus
    with db.session() as s:
        keys = [r.key for r in suggest_reuse(s, tenant, get_item(s, tenant, "jira", "APP-4"), limit=10)]
    assert "APP-4" not in keys and "APP-3" not in keys
    assert keys[0] == "APP-1" and "APP-9" not in keys


def test_reuse_prefers_the_resolved_twin_and_explains_why(corpus: tuple[Database, int]) -> None:
    db, tenant = corpus
    with db.session() as s:
        best = suggest_reuse(s, tenant, "session timeout logs users out when idle")[0]
    assert best.key == "APP-1" and any("resolved" in r for r in best.reasons)
    assert best.url == "https://site.test/browse/APP-1" and best.snippet


def test_experts_never_include_the_asker_or_ineligible_people(corpus: tuple[Database, int]) -> None:
    db, tenant = corpus
    with db.session() as s:
        everyone = [e.account_id for e in suggest_experts(s, tenant, "session timeout", min_confidence=0)]
        asked = [e.account_id for e in suggest_experts(s, tenant, "session timeout", asker="ann",
                                                       eligible=lambda a: a != "bob", min_confidence=0)]
    assert "ann" in everyone and "bob" in everyone
    assert "ann" not in asked and "bob" not in asked and asked


def test_evidence_only_shows_items_the_viewer_may_see(corpus: tuple[Database, int]) -> None:
    db, tenant = corpus
    with db.session() as s:
        def hidden(items: list[Any]) -> list[Any]:
            return [i for i in items if i.key != "APP-1"]

        found = suggest_experts(s, tenant, "session timeout logs users out", visible=hidden, min_confidence=0)
    shown = {ev.key for e in found for ev in e.evidence}
    assert shown and "APP-1" not in shown
    assert all(e.evidence for e in found)


def test_confidence_floor_hides_weak_experts(corpus: tuple[Database, int]) -> None:
    db, tenant = corpus
    with db.session() as s:
        weak = suggest_experts(s, tenant, "espresso session", min_confidence=0)
        strict = suggest_experts(s, tenant, "espresso session", min_confidence=0.9)
        unrelated = suggest_experts(s, tenant, "kubernetes helm chart")
    assert weak and not strict and unrelated == []


def test_open_questions_spread_load_between_near_equal_experts(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    store(db, tenant, doc("APP-1", "Backup job fails", "nightly backup", people={"amy": "assignee"}),
          doc("APP-2", "Backup job fails", "nightly backup", people={"ben": "assignee"}))
    with db.session() as s:
        free = [e.account_id for e in suggest_experts(s, tenant, "backup job fails")]
        busy_first = free[0]
        loaded = [e.account_id for e in suggest_experts(
            s, tenant, "backup job fails", load=lambda a: 3 if a == busy_first else 0)]
    assert set(free) == {"amy", "ben"} and loaded[0] != busy_first


def test_accounts_that_only_comment_rank_below_people_who_do_the_work(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    docs = []
    for n in range(30):  # a CI bot comments on everything; developers take the work
        topic = "Replication lag grows under load" if n < 4 else f"Unrelated chore {n}"
        owner = "ann" if n in (0, 4) else f"dev{n % 3}"
        docs.append(doc(f"APP-{n}", topic, "followers fall behind" if n < 4 else "misc",
                        days=n, people={owner: "assignee", "ci-bot": "commenter"}))
    store(db, tenant, *docs)
    with db.session() as s:
        ranked = [e.account_id for e in suggest_experts(s, tenant, "replication lag under load",
                                                        limit=10, min_confidence=0)]
    assert ranked.index("ann") < ranked.index("ci-bot")


def test_who_worked_where_follows_updates_and_deletions(sqlite_url: str) -> None:
    from plugin.matching.store import delete_item
    from plugin.search import site_view

    db, tenant = database(sqlite_url)
    store(db, tenant, *[doc(f"APP-{n}", f"Topic {n}", people={f"p{n}": "assignee", "bot": "commenter"})
                        for n in range(6)])
    with db.session() as s:
        delete_item(s, tenant, "jira", "APP-1")
        upsert_item(s, tenant, doc("APP-3", "Topic 3", people={"p3": "assignee"}))  # the bot left it
    indexed(db)
    with db.session() as s:
        touched, owned = site_view(s, tenant).worked_on(["bot", "p1", "p3", "p4"])
    assert touched.tolist() == [4, 0, 1, 1] and owned.tolist() == [0, 0, 1, 1]


# Deep frames every test failure shares: the runner, reflection and the thread pool.
RUNNER = "".join(f"\n\tat org.junit.runners.{name}.run{n}(Runner.java:{n})"
                 for n, name in enumerate(["ParentRunner", "BlockJUnit4ClassRunner", "FrameworkMethod",
                                           "ReflectiveCallable", "InvokeMethod", "RunBefores",
                                           "FailOnTimeout", "FutureTask", "ThreadPoolExecutor",
                                           "NativeMethodAccessorImpl", "DelegatingMethodAccessorImpl"]))


def test_shared_test_runner_frames_do_not_make_stack_traces_look_alike(sqlite_url: str) -> None:
    db, tenant = database(sqlite_url)
    docs = [doc(f"APP-{n + 1}", f"{test} fails on slow machines",
                f"AssertionError\n\tat org.app.{test}(T.java:9)" + RUNNER, days=n)
            for n, test in enumerate(["TestScheduler.testRetry", "TestQueue.testDrain", "TestCache.testEvict"])]
    docs.append(doc("APP-5", "Access point endpoint mistranslated",
                    "endpoints start with s3.accesspoint- instead of s3-accesspoint.", days=4))
    docs += [doc(f"APP-{n}", f"Unrelated chore {n}", "misc", days=n) for n in range(6, 12)]
    store(db, tenant, *docs)
    with db.session() as s:
        target = doc("APP-20", "TestArnResource.parseAccessPoint fails",
                     "ComparisonFailure: endpoint expected s3-accesspoint. but was s3.accesspoint-"
                     "\n\tat org.app.TestArnResource.parseAccessPoint(TestArnResource.java:60)" + RUNNER,
                     days=20)
        keys = [r.key for r in suggest_reuse(s, tenant, target, limit=2)]
    assert keys[0] == "APP-5"


def test_reuse_then_experts_read_the_items_rows_once(sqlite_url: str) -> None:
    """Experts vote with neighbours ranked by words alone: reuse reads them with its pool."""
    db, tenant = database(sqlite_url)
    words = ["session", "timeout", "login", "cache", "proxy", "token", "expiry", "cookie", "idle", "logout"]
    docs = [doc(f"APP-{n}", f"{words[n % 10]} {words[n * 3 % 10]} {words[n * 7 % 10]} problem {n}",
                " ".join(words[(n + k) % 10] for k in range(n % 5 + 1)), days=n, people={f"p{n % 13}": "assignee"})
            for n in range(1, 90)]
    store(db, tenant, *docs)
    reads: list[str] = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_: reads.append(sql) if "items.external_id" in sql else None)
    with db.session() as s:
        item = get_item(s, tenant, "jira", "APP-42")
        reads.clear()
        suggest_reuse(s, tenant, item)
        suggest_experts(s, tenant, item)
    assert len(reads) == 1
    db.dispose()
