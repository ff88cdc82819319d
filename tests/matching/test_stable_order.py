"""What panels say does not depend on the order the database gives rows in."""
from __future__ import annotations

from plugin.content.model import ContributionDoc
from plugin.matching import candidates
from plugin.matching import roles as roles_module
from plugin.matching.store import get_item
from plugin.services.privacy import topics
from tests.matching.helpers import database, doc, store


def test_an_assignee_who_resolved_the_issue_is_said_to_have_resolved_it(database_url: str) -> None:
    # Jira's assignee of a resolved issue is stored twice, as assignee and resolver, with the same
    # weight and time: which row the database gives first must not decide what the panel says.
    db, tenant = database(database_url)
    for n, roles in enumerate((("assignee", "resolver"), ("resolver", "assignee"))):
        item = doc(f"ZK-{n}", "Snapshot restore fails", "the snapshot restore fails", days=n)
        item.contributions = [ContributionDoc("ann", role, item.created, "Ann") for role in roles]
        store(db, tenant, item)
    with db.session() as session:
        ids = [get_item(session, tenant, "jira", f"ZK-{n}").id for n in range(2)]
        people = candidates.people(session, [tenant], ids)
    assert [people[i][0][:2] for i in ids] == [("ann", "resolver")] * 2
    assert roles_module.strongest(["assignee", "resolver"]) == roles_module.strongest(["resolver", "assignee"])
    assert roles_module.strongest(["kudos", "creator"]) == "creator"
    db.dispose()


def test_what_a_person_is_known_for_ties_by_name_not_by_row_order(database_url: str) -> None:
    db, tenant = database(database_url)
    items = []
    for n, label in enumerate(["zeta", "alpha", "mid", "alpha"]):
        item = doc(f"ZK-{n}", f"Item {n}", people={"ann": "assignee"}, days=n)
        item.labels = [label]
        items.append(item)
    store(db, tenant, *items)
    with db.session() as session:
        assert topics(session, tenant, "ann", limit=3) == ["APP", "alpha", "mid"]
    db.dispose()
