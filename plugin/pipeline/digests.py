"""Weekly recognition digests, delivered through Jira's issue notify API to people who opted in.

Jira can only e-mail a user about an issue, so each digest goes out as a notification on the most
recent issue the person contributed to. A `DigestDelivery` row is claimed (committed) before the
call, which makes delivery at most once per person per week even if jobs overlap or repeat; a
failed call removes the claim so a retry can send it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy import delete, false, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connect.db import Database, utcnow
from connect.host_client import segment
from connect.models import Tenant
from plugin.models.content import Contribution, Item, Person
from plugin.models.pipeline import DigestDelivery, DigestSubscription
from plugin.services import recognition
from plugin.services.people import People, host_lookup


def set_subscription(session: Session, tenant_id: int, account_id: str, subscribed: bool) -> None:
    """Opt a person in to (or out of) the weekly digest."""
    session.execute(
        delete(DigestSubscription).where(
            DigestSubscription.tenant_id == tenant_id, DigestSubscription.account_id == account_id
        )
    )
    if subscribed:
        session.add(DigestSubscription(tenant_id=tenant_id, account_id=account_id))
    session.flush()


def is_subscribed(session: Session, tenant_id: int, account_id: str) -> bool:
    """Whether the person opted in to the weekly digest."""
    return (
        session.scalar(
            select(DigestSubscription.id).where(
                DigestSubscription.tenant_id == tenant_id,
                DigestSubscription.account_id == account_id,
            )
        )
        is not None
    )


def last_week(now: datetime) -> date:
    """The Monday starting the last complete week before `now`."""
    return now.date() - timedelta(days=now.weekday() + 7)


def due(session: Session, week: date) -> list[tuple[int, str]]:
    """(tenant id, account id) of active subscribers on installed Jira sites without this week's digest."""
    sent = select(DigestDelivery.id).where(
        DigestDelivery.tenant_id == DigestSubscription.tenant_id,
        DigestDelivery.account_id == DigestSubscription.account_id,
        DigestDelivery.week_start == week,
    )
    left = select(Person.id).where(  # deactivated (Jira says so): no one reads their mail
        Person.tenant_id == DigestSubscription.tenant_id,
        Person.account_id == DigestSubscription.account_id,
        Person.active == false(),
    )
    rows = session.execute(
        select(DigestSubscription.tenant_id, DigestSubscription.account_id)
        .join(Tenant, Tenant.id == DigestSubscription.tenant_id)
        .where(Tenant.installed.is_(True), Tenant.product_type == "jira", ~sent.exists(), ~left.exists())
        .order_by(DigestSubscription.tenant_id, DigestSubscription.account_id)
    ).all()
    return [(t, a) for t, a in rows]


def latest_issue(session: Session, tenant_id: int, account_id: str) -> str | None:
    """The key of the Jira issue the person most recently contributed to."""
    return session.scalar(
        select(Item.key)
        .join(Contribution, Contribution.item_id == Item.id)
        .where(
            Contribution.tenant_id == tenant_id,
            Contribution.account_id == account_id,
            Item.source == "jira",
        )
        .order_by(Contribution.at.desc(), Item.id.desc())
        .limit(1)
    )


def _claim(db: Database, tenant_id: int, account_id: str, week: date) -> bool:
    try:
        with db.session() as session:
            session.add(
                DigestDelivery(
                    tenant_id=tenant_id, account_id=account_id, week_start=week, status="sending"
                )
            )
        return True
    except IntegrityError:
        return False  # already sent (or being sent) this week


# Each kind of kudos in its own words: a "helped" verdict or an accepted answer is no thank-you,
# and the message stored with a verdict names the item by key, a page by its id.
SAID = {"thanks": "thanked you on {on}", "helped": "found your work on {on} helpful",
        "answer": "accepted your answer on {on}"}


def _line(kudos: dict[str, Any]) -> str:
    said = SAID.get(kudos["kind"], SAID["thanks"]).format(on=kudos["on"])
    message = kudos["message"] if kudos["kind"] == "thanks" else ""
    return f"{kudos['from']} {said}" + (f": {message}" if message else "")


def _message(digest: dict[str, Any]) -> dict[str, str]:
    lines = [digest["summary"]] + [_line(k) for k in digest["kudos"]]
    html = "".join(f"<p>{escape(line)}</p>" for line in lines)
    return {
        "subject": f"Your week in Inflow: {_week_named(digest['week_start'])}",
        "textBody": "\n".join(lines),
        "htmlBody": html,
    }


def _week_named(start: str) -> str:
    """A week as a reader's date range ("24 to 30 Nov 2025"), not the ISO date it starts on."""
    first = date.fromisoformat(start)
    last = first + timedelta(days=6)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day} to {last.day} {last:%b %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%b} to {last.day} {last:%b %Y}"
    return f"{first.day} {first:%b %Y} to {last.day} {last:%b %Y}"


def _worth_sending(digest: dict[str, Any]) -> bool:
    impact = digest.get("impact") or {}
    return bool(digest.get("kudos")) or any(
        v for v in impact.values() if isinstance(v, (int, float))
    )


def send_digest(db: Database, tenant_id: int, account_id: str, week: date, client: Any) -> str:
    """Send one person's digest for the week at most once; returns sent|skipped|already."""
    if not _claim(db, tenant_id, account_id, week):
        return "already"
    try:
        with db.session() as session:
            # Givers Inflow has no name for (a newcomer, someone known in Confluence alone) are
            # asked of Jira, as panels ask: a digest names people, never shows an account id.
            names = People(session, tenant_id, host_lookup(client, "jira"))
            digest = recognition.weekly_digest(session, tenant_id, account_id, week, names)
            issue = latest_issue(session, tenant_id, account_id)
        status = "sent" if issue and _worth_sending(digest) else "skipped"
        if status == "sent":
            body = {
                **_message(digest),
                "to": {
                    "users": [{"accountId": account_id}],
                    "reporter": False,
                    "assignee": False,
                    "watchers": False,
                    "voters": False,
                },
            }
            client.request("POST", f"/rest/api/3/issue/{segment(issue)}/notify", json=body)
    except Exception:
        _release(db, tenant_id, account_id, week)
        raise
    _mark(db, tenant_id, account_id, week, status, issue)
    return status


def _delivery(session: Session, tenant_id: int, account_id: str, week: date) -> Any:
    return select(DigestDelivery).where(
        DigestDelivery.tenant_id == tenant_id,
        DigestDelivery.account_id == account_id,
        DigestDelivery.week_start == week,
    )


def _release(db: Database, tenant_id: int, account_id: str, week: date) -> None:
    with db.session() as session:
        for row in session.scalars(_delivery(session, tenant_id, account_id, week)):
            session.delete(row)


def _mark(
    db: Database, tenant_id: int, account_id: str, week: date, status: str, issue: str | None
) -> None:
    with db.session() as session:
        row = session.scalars(_delivery(session, tenant_id, account_id, week)).one()
        row.status, row.issue_key, row.sent_at = status, issue, utcnow()
