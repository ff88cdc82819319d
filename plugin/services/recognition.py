"""Kudos with their fairness rules, personal impact, weekly digests and the recognition board."""
from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, distinct, func, select, text
from sqlalchemy.orm import Session

from connect.db import UTCDateTime, utcnow
from plugin.models.content import Contribution, Item
from plugin.models.social import Feedback, Kudos, Question
from plugin.search.sites import of_site
from plugin.services.errors import Refused
from plugin.services.feedback import AUTHOR_ROLES
from plugin.services.people import UNKNOWN, People
from plugin.services.settings import Until

PER_PAIR_PER_ITEM_PER_DAY = 1
PER_GIVER_PER_DAY = 20
SOMEONE = "Someone"  # a giver no name is known for


def _count_given(session: Session, tenant_id: int, giver: str, since: datetime,
                 **match: str) -> int:
    query = select(func.count(Kudos.id)).where(
        Kudos.tenant_id == tenant_id, Kudos.from_account_id == giver, Kudos.kind == "thanks",
        Kudos.created_at > since)
    for column, value in match.items():
        query = query.where(getattr(Kudos, column) == value)
    return int(session.scalar(query) or 0)


def thank(session: Session, tenant_id: int, *, source: str, key: str, space: str | None,
          giver: str, receiver: str, message: str, now: datetime | None = None) -> Kudos:
    """Store a thank-you; refuses self-thanks (422) and thanks past the daily limits (429)."""
    if giver == receiver:
        raise Refused(422, "You cannot thank yourself.", "to_account_id")
    now = now or utcnow()
    day_ago = now - timedelta(days=1)
    # Stored first, then counted with the giver's other thanks, one request of theirs at a time:
    # two at once (a double click, a script) each counted before the other wrote and both passed.
    _one_at_a_time(session, tenant_id, giver)
    kudos = Kudos(tenant_id=tenant_id, source=source, item_key=key, space=space,
                  from_account_id=giver, to_account_id=receiver, kind="thanks",
                  message=message, created_at=now)
    session.add(kudos)
    session.flush()
    if _count_given(session, tenant_id, giver, day_ago, to_account_id=receiver, source=source,
                    item_key=key) > PER_PAIR_PER_ITEM_PER_DAY:
        raise Refused(429, "You already thanked this person for this item today.")
    if _count_given(session, tenant_id, giver, day_ago) > PER_GIVER_PER_DAY:
        raise Refused(429, f"You can give {PER_GIVER_PER_DAY} thanks a day; try again tomorrow.")
    return kudos


def _one_at_a_time(session: Session, tenant_id: int, giver: str) -> None:
    """Hold the giver's lock until the transaction ends, so their requests count one by one.

    PostgreSQL: a transaction-level advisory lock on the (tenant, giver) pair. SQLite takes its
    one write lock at the insert that follows and holds it to the commit, which does the same.
    """
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.blake2b(f"thanks:{tenant_id}:{giver}".encode(), digest_size=8).digest()
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": int.from_bytes(digest, "big", signed=True)})


def kudos_on(session: Session, tenant_id: int, source: str, key: str) -> list[Kudos]:
    """Thank-yous given on an item, newest first."""
    return list(session.scalars(_THANKS_ON, {"tenant": tenant_id, "source": source, "key": key}))


# Built once: the contributors panel lists them at every render.
_THANKS_ON = (select(Kudos).where(Kudos.tenant_id == bindparam("tenant"), Kudos.source == bindparam("source"),
                                  Kudos.item_key == bindparam("key"), Kudos.kind == "thanks")
              .order_by(Kudos.created_at.desc()).limit(50))


def impact_queries(tenant_id: Any, account_id: Any, since: Any, until: Any) -> list[Select[Any]]:
    """The three counts of `impact`, one query each (values or bind parameters alike)."""
    # The whole site's: a person's work and thanks in either product are theirs (a page that
    # helped with an issue, a question answered in Confluence), as their choices are.
    helped = (select(func.count(distinct(Feedback.source + ":" + Feedback.item_key)))
              .join(Contribution, Contribution.item_id == Feedback.target_item_id)
              .where(of_site(Feedback.tenant_id, tenant_id), Feedback.verdict == "helped",
                     of_site(Contribution.tenant_id, tenant_id),
                     Contribution.account_id == account_id,
                     Contribution.role.in_(AUTHOR_ROLES), Feedback.account_id != account_id,
                     Feedback.updated_at >= since, Feedback.updated_at < until))
    answered = select(func.count(Question.id)).where(
        of_site(Question.tenant_id, tenant_id), Question.expert_account_id == account_id,
        Question.answered_at >= since, Question.answered_at < until)
    kudos = select(func.count(Kudos.id)).where(
        of_site(Kudos.tenant_id, tenant_id), Kudos.to_account_id == account_id,
        Kudos.created_at >= since, Kudos.created_at < until)
    return [helped, answered, kudos]


# The three counts of `impact` in one statement, built once: building them cost more than the
# database took to count (the contributors panel counts them at every render).
_IMPACT = select(*(query.scalar_subquery() for query in impact_queries(
    bindparam("tenant"), bindparam("viewer"), bindparam("since", type_=UTCDateTime()),
    bindparam("until", type_=UTCDateTime()))))


def impact(session: Session, tenant_id: int, account_id: str, since: datetime,
           until: datetime | None = None) -> dict[str, int]:
    """What a person's work did for others between `since` and `until` (default now)."""
    helped, answered, kudos = session.execute(_IMPACT, {
        "tenant": tenant_id, "viewer": account_id, "since": since, "until": until or utcnow()}).one()
    return {"items_helped": int(helped or 0), "questions_answered": int(answered or 0),
            "kudos_received": int(kudos or 0)}


def giver_names(names: People, accounts: set[str]) -> dict[str, str]:
    """Who gave thanks, named as panels name them; "Someone" when no name is known."""
    names.prefetch(accounts)
    # Never the account id: it means nothing to a reader, and a digest is an e-mail.
    return {account: name if (name := names.name(account)) != UNKNOWN else SOMEONE
            for account in accounts}


def weekly_digest(session: Session, tenant_id: int, account_id: str,
                  week_start: date | datetime, names: People | None = None) -> dict[str, Any]:
    """A person's week on the site: thanks received (with who and why) and their impact.

    `names` resolves givers Inflow has no name for (the digest job passes the host's lookup).
    """
    day = week_start.date() if isinstance(week_start, datetime) else week_start
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=7)
    received = session.scalars(select(Kudos).where(
        of_site(Kudos.tenant_id, tenant_id), Kudos.to_account_id == account_id,
        Kudos.created_at >= start, Kudos.created_at < end)
        .order_by(Kudos.created_at, Kudos.id)).all()
    givers = giver_names(names or People(session, tenant_id),
                         {k.from_account_id for k in received})
    titles = _page_titles(session, tenant_id, {k.item_key for k in received if k.source != "jira"})
    week = impact(session, tenant_id, account_id, start, end)
    return {"account_id": account_id, "week_start": start.date().isoformat(),
            "week_end": end.date().isoformat(), "impact": week,
            "kudos": [{"from": givers[k.from_account_id], "kind": k.kind,
                       "source": k.source, "key": k.item_key, "message": k.message,
                       "on": k.item_key if k.source == "jira" else
                       f'the page "{titles[k.item_key]}"' if k.item_key in titles else "a page"}
                      for k in received],
            "summary": (f"Your work helped {_counted(week['items_helped'], 'item')}, you answered "
                        f"{_counted(week['questions_answered'], 'question')} and received "
                        f"{week['kudos_received']} kudos this week.")}


def _page_titles(session: Session, tenant_id: int, keys: set[str]) -> dict[str, str]:
    """The site's pages' titles by id: a digest names a page as people do, never by its id."""
    if not keys:
        return {}
    return {key: title for key, title in session.execute(select(Item.key, Item.title).where(
        of_site(Item.tenant_id, tenant_id), Item.source == "confluence", Item.key.in_(keys)))}


def _counted(n: int, noun: str) -> str:
    """A count with its noun: "1 item", "3 items"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def board(session: Session, tenant_id: int, since: datetime, space: str | None = None,
          limit: int = 10, names: People | None = None,
          until: Until | None = None) -> list[dict[str, Any]]:
    """People most thanked and credited since a date on the whole site, or within one space.

    `until` hears when the oldest kudos counted leaves a window of the same length.
    """
    # The site: both products' thanks (the board says "Whole site"). A space is this
    # product's alone: a Jira project may share its key.
    where = (Kudos.tenant_id == tenant_id, Kudos.space == space) if space \
        else (of_site(Kudos.tenant_id, tenant_id),)
    counted = (*where, Kudos.created_at >= since)
    query = select(Kudos.to_account_id, func.count(Kudos.id).label("n")).where(*counted)
    if until is not None:
        oldest = session.scalar(select(func.min(Kudos.created_at)).where(*counted))
        if oldest is not None:
            until.note_until(oldest + (utcnow() - since))
    rows = session.execute(query.group_by(Kudos.to_account_id)
                           .order_by(func.count(Kudos.id).desc(), Kudos.to_account_id)
                           .limit(limit)).all()
    names = names or People(session, tenant_id)
    names.prefetch(account for account, _ in rows)
    return [{"account_id": account, "kudos": int(n), "display_name": names.name(account),
             "avatar_url": names.avatar(account)} for account, n in rows]
