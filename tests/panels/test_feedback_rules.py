"""Who may give a verdict or a thank-you, on what, and what it counts: over the real API."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from connect.db import utcnow
from plugin.matching.store import delete_item, get_item
from plugin.models.content import Item
from plugin.models.social import Feedback, Kudos, PanelEvent
from plugin.services import recognition
from plugin.services.feedback import authors_of
from tests.panels.conftest import Site
from tests.panels.test_cross_product import PAGE_ID, VIEWER, both  # noqa: F401 (a fixture)

ASKER, MALLORY = "aco", "mallory"
UNKNOWN_ITEM = {"key": ["This site has no such issue or page that Inflow can see."]}


def _target(site: Site, key: str) -> dict[str, Any]:
    """The first reuse suggestion the asker's panel shows on an issue."""
    response = site.get(f"/api/content/jira/{key}/reuse", sub=ASKER)
    assert response.status_code == 200
    return response.get_json()["suggestions"][0]


def _verdict(site: Site, key: str, target_id: int, sub: str = ASKER, verdict: str = "helped") -> Any:
    return site.post("/api/feedback", {"source": "jira", "key": key, "target_item_id": target_id,
                                       "verdict": verdict}, sub=sub)


def _counts(site: Site, item_id: int) -> tuple[int, int]:
    with site.db.session() as session:
        item = session.get(Item, item_id)
        return item.helpful_count, item.not_relevant_count


def _count(site: Site, *where: Any, of: Any = Feedback) -> int:
    with site.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(of).where(*where)) or 0)


def test_helped_on_a_page_suggested_on_an_issue_counts_and_credits_in_confluence(
        both: tuple) -> None:  # noqa: F811
    site, jira, wiki, key = both
    on_issue = site.client.get(f"/api/content/jira/{key}/reuse", headers=jira.context_headers(sub=VIEWER))
    [page] = [s for s in on_issue.get_json()["suggestions"] if s["key"] == PAGE_ID]

    def say(verdict: str) -> Any:
        return site.client.post("/api/feedback", json={
            "source": "jira", "key": key, "target_item_id": page["item_id"], "verdict": verdict},
            headers=jira.context_headers(sub=VIEWER))

    assert say("helped").status_code == 200
    assert _counts(site, page["item_id"]) == (1, 0)
    with site.db.session() as session:
        authors = set(authors_of(session, wiki.tenant_id, page["item_id"])) - {VIEWER}
        credited = session.execute(select(Kudos.tenant_id, Kudos.to_account_id).where(
            Kudos.kind == "helped")).tuples().all()
    assert authors and {(wiki.tenant_id, author) for author in authors} == set(credited)
    assert say("not_relevant").status_code == 200  # taken back: counted and credited no more
    assert _counts(site, page["item_id"]) == (0, 1)
    assert _count(site, Kudos.kind == "helped", of=Kudos) == 0


def test_verdicts_on_made_up_items_are_refused_and_count_nowhere(site: Site) -> None:
    key = site.keys[-1]
    target = _target(site, key)
    with site.db.session() as session:
        [author] = authors_of(session, site.tenant.tenant_id, target["item_id"])[:1]
        before = recognition.impact(session, site.tenant.tenant_id, author, utcnow() - timedelta(days=30))
    for n in range(1, 6):
        refused = _verdict(site, f"ZZZ-{n}", target["item_id"])
        assert refused.status_code == 422 and refused.get_json()["errors"] == UNKNOWN_ITEM
    assert _count(site) == 0 and _counts(site, target["item_id"]) == (0, 0)
    assert _count(site, PanelEvent.project == "ZZZ", of=PanelEvent) == 0
    assert _count(site, Kudos.kind == "helped", of=Kudos) == 0
    assert _verdict(site, key, target["item_id"]).status_code == 200  # the real one counts
    with site.db.session() as session:
        after = recognition.impact(session, site.tenant.tenant_id, author, utcnow() - timedelta(days=30))
    assert after["items_helped"] == before["items_helped"] + 1


def test_a_verdict_on_an_issue_not_learned_yet_is_kept_under_its_own_key(
        site: Site, activemq_issues: list[dict[str, Any]]) -> None:
    target = _target(site, site.keys[-1])
    issue = next(i for i in activemq_issues if i["key"] == site.keys[0])
    with site.db.session() as session:
        assert delete_item(session, site.tenant.tenant_id, "jira", issue["key"])
    assert _verdict(site, issue["id"], target["item_id"]).status_code == 200  # by its id
    with site.db.session() as session:
        assert session.scalars(select(Feedback.item_key)).all() == [issue["key"]]
    assert _counts(site, target["item_id"]) == (1, 0)


def test_a_verdict_on_what_the_viewer_cannot_see_is_refused_as_if_it_did_not_exist(site: Site) -> None:
    key = site.keys[-1]
    target = _target(site, key)
    unknown = _verdict(site, key, 10**6, sub=MALLORY)
    site.host.deny(MALLORY, target["key"])
    hidden = _verdict(site, key, target["item_id"], sub=MALLORY)
    assert (hidden.status_code, hidden.get_json()) == (unknown.status_code, unknown.get_json())
    assert "target_item_id" in hidden.get_json()["errors"]
    site.host.deny("eve", key)  # the issue itself, its suggestion visible
    refused = _verdict(site, key, _target(site, site.keys[-2])["item_id"], sub="eve")
    assert refused.status_code == 422 and refused.get_json()["errors"] == UNKNOWN_ITEM
    assert _count(site) == 0 and _count(site, of=Kudos) == 0
    assert _counts(site, target["item_id"]) == (0, 0)


def test_kudos_on_an_item_the_giver_cannot_see_answer_as_on_a_missing_one(site: Site) -> None:
    body = {"source": "jira", "to_account_id": "jstrachan", "message": "thanks"}
    missing = site.post("/api/kudos", {**body, "key": "ZZZ-1"}, sub=MALLORY)
    stored, unstored = site.keys[-1], site.keys[0]
    with site.db.session() as session:
        assert delete_item(session, site.tenant.tenant_id, "jira", unstored)
        assert get_item(session, site.tenant.tenant_id, "jira", stored) is not None
    for key in (stored, unstored):
        site.host.deny(MALLORY, key)
        hidden = site.post("/api/kudos", {**body, "key": key}, sub=MALLORY)
        assert (hidden.status_code, hidden.get_json()) == (missing.status_code, missing.get_json())
        assert hidden.status_code == 422, key
    assert _count(site, of=Kudos) == 0
    assert site.post("/api/kudos", {**body, "key": stored}, sub=ASKER).status_code == 201


def test_erasing_someone_takes_their_verdicts_out_of_the_counts(site: Site) -> None:
    key = site.keys[-1]
    helped, dismissed = (_target(site, k)["item_id"] for k in (key, site.keys[-2]))
    assert _verdict(site, key, helped).status_code == 200
    assert _verdict(site, key, helped, sub="hiram").status_code == 200
    assert _verdict(site, site.keys[-2], dismissed, verdict="not_relevant").status_code == 200
    assert _counts(site, helped) == (2, 0) and _counts(site, dismissed)[1] == 1
    assert site.post("/api/me/erase", {"confirm": "ERASE"}, sub=ASKER).status_code == 200
    assert _counts(site, helped) == (1, 0)  # hiram's verdict stays
    assert _counts(site, dismissed) == (0, 0)
