"""Who may give a verdict or a thank-you, on what, and what it counts: over the real API."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from plugin.models.content import Item
from plugin.models.social import Feedback, Kudos
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


