"""Permission answers are shared by the web processes through Redis, never past their time."""
from __future__ import annotations

import time
from typing import Any

from redis import Redis

from plugin.matching.precompute import refresh_suggestions
from plugin.matching.store import get_item
from plugin.services.permissions import CACHE, SharedAnswers, TTLCache, visible_to
from tests.conftest import free_port
from tests.panels.conftest import Site

CHECKS = "/rest/api/3/permissions/check"


class Item:
    """What the permission filter reads of an item."""

    def __init__(self, external_id: str) -> None:
        self.source, self.key, self.external_id = "jira", f"AMQ-{external_id}", external_id


class Host:
    """A host that lets everyone see even issue ids, counting the checks it answers."""

    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    def request(self, method: str, path: str, params: Any = None, json: Any = None) -> Any:
        issues = json["projectPermissions"][0]["issues"]
        self.asked.append(issues)
        allowed = [i for i in issues if i % 2 == 0]

        class Answer:
            def json(self) -> Any:
                return {"projectPermissions": [{"permission": "BROWSE_PROJECTS", "issues": allowed}]}

        return Answer()


class Horizon:
    def __init__(self) -> None:
        self.until = float("inf")
        self.renew_before = 0.0

    def note(self, expires_at: float) -> None:
        self.until = min(self.until, expires_at)

    def answered(self, ref: tuple[str, str], allowed: bool, expires_at: float) -> None:
        self.note(expires_at)


def test_another_process_uses_the_answer_until_the_moment_it_expires(redis_url: str) -> None:
    shared, host = SharedAnswers(Redis.from_url(redis_url)), Host()
    items = [Item("10"), Item("11")]
    first = visible_to(host, 1, "viewer", cache=TTLCache(ttl=0.5), shared=shared)
    assert [i.key for i in first(items)] == ["AMQ-10"] and len(host.asked) == 1
    time.sleep(0.2)
    horizon = Horizon()
    second = visible_to(host, 1, "viewer", cache=TTLCache(ttl=0.5), shared=shared, horizon=horizon)
    # Refusals are shared as well as grants, and the render learns when they run out: when the
    # first process's do, not a full period after this process took them.
    assert [i.key for i in second(items)] == ["AMQ-10"] and len(host.asked) == 1
    assert horizon.until - time.monotonic() < 0.35
    # Another viewer, or another site, is asked about on their own.
    visible_to(host, 1, "someone else", cache=TTLCache(), shared=shared)(items)
    visible_to(host, 2, "viewer", cache=TTLCache(), shared=shared)(items)
    assert len(host.asked) == 3
    time.sleep(0.4)
    visible_to(host, 1, "viewer", cache=TTLCache(ttl=0.5), shared=shared)(items)
    assert len(host.asked) == 4  # past its time, nobody uses the answer


def test_a_renewal_asks_the_host_for_a_shared_answer_as_due_as_its_own(redis_url: str) -> None:
    shared, host = SharedAnswers(Redis.from_url(redis_url)), Host()
    items = [Item("10")]
    visible_to(host, 1, "viewer", cache=TTLCache(ttl=5.0), shared=shared)(items)
    renewal = Horizon()
    renewal.renew_before = time.monotonic() + 10.0  # answers expiring in the next 10 s are due
    visible_to(host, 1, "viewer", cache=TTLCache(ttl=5.0), shared=shared, horizon=renewal)(items)
    assert len(host.asked) == 2  # the shared answer expires in 5 s: asked again, not taken
    renewal.renew_before = time.monotonic() + 1.0
    visible_to(host, 1, "viewer", cache=TTLCache(ttl=5.0), shared=shared, horizon=renewal)(items)
    assert len(host.asked) == 2  # the renewed answer is shared, and it is not due yet


def test_without_redis_the_host_is_asked_and_the_view_still_answers() -> None:
    shared, host = SharedAnswers(Redis(port=free_port(), socket_connect_timeout=0.5)), Host()
    for _ in range(2):
        shown = visible_to(host, 1, "viewer", cache=TTLCache(), shared=shared)([Item("10"), Item("11")])
        assert [i.key for i in shown] == ["AMQ-10"]
    assert len(host.asked) == 2


def test_an_issue_panel_in_another_web_process_does_not_ask_again(site: Site, redis_url: str) -> None:
    site.app.extensions["inflow.answers"] = SharedAnswers(Redis.from_url(redis_url))
    key = site.keys[-1]
    with site.db.session() as session:
        refresh_suggestions(session, site.tenant.tenant_id, get_item(session, site.tenant.tenant_id, "jira", key).id)
    path = f"/jira/panels/reuse?issueKey={key}&projectKey={key.split('-')[0]}"
    before = len(site.host.calls_to(CHECKS, "POST"))
    page = site.page(path)
    assert page.status_code == 200 and len(site.host.calls_to(CHECKS, "POST")) == before + 1
    # A process that never saw these answers (this one, its own cache emptied) renders the same
    # panel from the shared answers.
    TTLCache.clear(CACHE)
    again = site.page(path)
    assert again.get_data() == page.get_data() and len(site.host.calls_to(CHECKS, "POST")) == before + 1
    # Forgetting the answers (as their 60 s running out does) asks the host again.
    CACHE.clear()
    site.page(path)
    assert len(site.host.calls_to(CHECKS, "POST")) == before + 2


def test_an_items_recent_viewers_are_the_last_few_most_recent_first(redis_url: str) -> None:
    from plugin.services.permissions import RECENT_VIEWERS

    shared = SharedAnswers(Redis.from_url(redis_url))
    for n in range(RECENT_VIEWERS + 2):
        shared.saw(1, ("jira", "AMQ-1"), f"viewer-{n}")
        time.sleep(0.002)
    shared.saw(1, ("jira", "AMQ-1"), "viewer-3")  # seen again: the most recent now
    expected = ["viewer-3"] + [f"viewer-{n}" for n in range(RECENT_VIEWERS + 1, 1, -1) if n != 3]
    assert shared.viewers(1, ("jira", "AMQ-1")) == expected[:RECENT_VIEWERS]
    assert shared.viewers(2, ("jira", "AMQ-1")) == [] and shared.viewers(1, ("jira", "AMQ-2")) == []


def test_forgetting_people_drops_their_views_and_answers_in_that_site_only(redis_url: str) -> None:
    shared = SharedAnswers(Redis.from_url(redis_url))
    for tenant in (1, 2):
        for person in ("gone", "stays"):
            shared.saw(tenant, ("jira", "AMQ-1"), person)
            shared.put(tenant, person, {("jira", "10"): True}, 60.0)
    shared.forget(1, {"gone"})
    assert shared.viewers(1, ("jira", "AMQ-1")) == ["stays"]
    assert shared.get(1, "gone", [("jira", "10")]) == {}
    assert shared.get(1, "stays", [("jira", "10")]) and shared.get(2, "gone", [("jira", "10")])
    assert sorted(shared.viewers(2, ("jira", "AMQ-1"))) == ["gone", "stays"]
