"""Helped / Not relevant verdicts on suggestions: stored, fed to ranking, credited to authors."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, distinct, func, select
from sqlalchemy.orm import Session

from connect.db import utcnow
from plugin.matching.store import set_feedback_counts
from plugin.models.content import Contribution, Item
from plugin.models.social import Feedback, Kudos
from plugin.search.sites import of_site
from plugin.services import adoption
from plugin.services.errors import Refused

# Roles whose work made an item useful; reporters and commenters asked, they did not answer.
AUTHOR_ROLES = ("assignee", "resolver", "creator", "editor", "answerer")
VERDICTS = ("helped", "not_relevant")
UNKNOWN_SUGGESTION = "Unknown suggestion."


def authors_of(session: Session, tenant_id: int, item_id: int) -> list[str]:
    """Accounts who authored or resolved an item, most recent contribution first."""
    rows = session.execute(select(Contribution.account_id, Contribution.at).where(
        Contribution.tenant_id == tenant_id, Contribution.item_id == item_id,
        Contribution.role.in_(AUTHOR_ROLES)).order_by(Contribution.at.desc())).all()
    return list(dict.fromkeys(account for account, _ in rows))


def _credit(session: Session, target: Item, key: str, giver: str, now: datetime) -> None:
    # Where their work is: a page's authors, credited for an issue it helped with, in Confluence.
    for author in authors_of(session, target.tenant_id, target.id):
        if author != giver:
            session.add(Kudos(tenant_id=target.tenant_id, source=target.source, item_key=target.key,
                              space=target.space, from_account_id=giver, to_account_id=author,
                              kind="helped", message=f"Helped on {key}", created_at=now))


def _helped_kudos(target: Item, giver: str) -> tuple[Any, ...]:
    """The conditions of the credit a giver's "helped" verdicts on the item gave its authors."""
    return (Kudos.tenant_id == target.tenant_id, Kudos.kind == "helped",
            Kudos.from_account_id == giver, Kudos.source == target.source,
            Kudos.item_key == target.key)


def _uncredit(session: Session, target: Item, giver: str) -> None:
    session.execute(delete(Kudos).where(*_helped_kudos(target, giver)))


def _credited(session: Session, target: Item, giver: str) -> bool:
    return session.scalar(select(Kudos.id).where(*_helped_kudos(target, giver)).limit(1)) is not None


def _on_target(target: Item) -> tuple[Any, ...]:
    """The conditions of the verdicts on an item, given in either product of its site."""
    return (Feedback.target_item_id == target.id, of_site(Feedback.tenant_id, target.tenant_id))


def _people(session: Session, target: Item, verdict: str) -> int:
    """How many people gave the item this verdict (on whatever item it was suggested for)."""
    return int(session.scalar(select(func.count(distinct(Feedback.account_id))).where(
        *_on_target(target), Feedback.verdict == verdict)) or 0)


def _count(session: Session, target: Item) -> None:
    """Store the item's counts anew from the verdicts; in its own tenant, where ranking reads them."""
    set_feedback_counts(session, target.tenant_id, target.id, _people(session, target, "helped"),
                        _people(session, target, "not_relevant"))


def recount(session: Session, target_item_ids: Iterable[int]) -> None:
    """Count anew the verdicts on these items (after some were taken away, by an erasure say)."""
    ids = set(target_item_ids)
    if ids:
        for target in session.scalars(select(Item).where(Item.id.in_(ids))):
            _count(session, target)


def suggestion(session: Session, tenant_id: int, target_item_id: int) -> Item:
    """The item a verdict is on: one of the tenant's site, either product (an issue suggests pages)."""
    target = session.scalar(select(Item).where(Item.id == target_item_id,
                                               of_site(Item.tenant_id, tenant_id)))
    if target is None:
        raise Refused(422, UNKNOWN_SUGGESTION, "target_item_id")
    return target


def give(session: Session, tenant_id: int, *, source: str, key: str, project: str | None,
         target_item_id: int, verdict: str, account_id: str,
         now: datetime | None = None) -> Feedback:
    """Store (or change) a viewer's verdict; ranking counts and author credit follow it.

    The counts say how many people found the item helpful (or not relevant), as its reason reads
    ("helped 3 people before"): they are counted anew from the verdicts each time, a person
    once per item however many issues they said it on, and its authors are credited once per
    person while that person says it helped anywhere.
    """
    now = now or utcnow()
    target = suggestion(session, tenant_id, target_item_id)
    row = session.scalar(select(Feedback).where(
        Feedback.tenant_id == tenant_id, Feedback.source == source, Feedback.item_key == key,
        Feedback.target_item_id == target_item_id, Feedback.account_id == account_id))
    if row is not None and row.verdict == verdict:
        return row
    if row is not None:
        row.verdict = verdict
    else:
        row = Feedback(tenant_id=tenant_id, source=source, item_key=key, account_id=account_id,
                       target_item_id=target_item_id, verdict=verdict, created_at=now)
        session.add(row)
    session.flush()
    _count(session, target)
    still_helped = session.scalar(select(Feedback.id).where(
        *_on_target(target), Feedback.account_id == account_id,
        Feedback.verdict == "helped").limit(1)) is not None
    if not still_helped:
        _uncredit(session, target, account_id)
    elif not _credited(session, target, account_id):
        _credit(session, target, key, account_id, now)
    if verdict == "helped":
        adoption.record(session, tenant_id, "reuse", "used", source, key, project, account_id,
                        target=target.key, at=now)
    session.flush()
    return row


def verdicts_by(session: Session, tenant_id: int, source: str, key: str,
                account_id: str | None) -> dict[int, str]:
    """This viewer's verdicts on the suggestions for an item, by target item id."""
    if not account_id:
        return {}
    rows = session.execute(_VERDICTS, {"tenant": tenant_id, "source": source, "key": key,
                                       "account": account_id}).all()
    return dict(rows)


# Built once: the reuse panel reads them at every render.
_VERDICTS = select(Feedback.target_item_id, Feedback.verdict).where(
    Feedback.tenant_id == bindparam("tenant"), Feedback.source == bindparam("source"),
    Feedback.item_key == bindparam("key"), Feedback.account_id == bindparam("account"))
