"""The personal data reporting cycle: tell the host whose data we hold, act on what it answers.

Atlassian's reporting API takes at most 90 accounts per call, each with the time we last
retrieved that person's data; it answers `closed` (erase everything about them) or `updated`
(refresh what we store) per account, and its `Cycle-Period` header (seconds) says when to report
again, in hours.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connect.db import Database, utcnow
from connect.host_client import HostError
from connect.models import Tenant
from plugin.models.content import Contribution, Item, Person
from plugin.models.pipeline import DigestDelivery, DigestSubscription, PrivacyCycle
from plugin.models.social import (
    Feedback,
    Kudos,
    PanelEvent,
    PersonPreference,
    ProjectSettings,
    Question,
    QuestionEvent,
)
from plugin.services import accounts, people, privacy

BATCH = 90
DEFAULT_PERIOD = 7 * 24 * 3600
REPORT_PATH = "/app/report-accounts/"
# People of unknown account type (Confluence) asked per cycle (100 per call):
# a site upgraded with many people learns theirs over a few cycles instead of in one long job.
ACTIVITY_LIMIT = 2_000


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def accounts_held(
    session: Session, tenant_id: int, default: datetime
) -> list[tuple[str, datetime]]:
    """(account id, when we last stored data about them): from their items, else `default`.

    Every table that holds account ids is read (see `_ACCOUNT_COLUMNS`).
    """
    latest = dict(
        session.execute(
            select(Contribution.account_id, func.max(Item.indexed_at))
            .join(Item, Item.id == Contribution.item_id)
            .where(Contribution.tenant_id == tenant_id)
            .group_by(Contribution.account_id)
        ).all()
    )
    accounts = set(latest) | privacy.named_in_rules(session, [tenant_id])
    for column in _ACCOUNT_COLUMNS:
        accounts.update(a for a in session.scalars(
            select(column).where(column.table.c.tenant_id == tenant_id).distinct()) if a)
    return sorted((a, latest.get(a) or default) for a in accounts)


# Every stored account id, not only the people who worked on items: someone who only asked,
# thanked, gave feedback, viewed a panel, made a choice, saved a project's settings or is named
# in its rules is reported too, and erased if closed.
_ACCOUNT_COLUMNS = (
    Person.account_id, Question.asker_account_id, Question.expert_account_id,
    QuestionEvent.account_id, Kudos.from_account_id, Kudos.to_account_id, Feedback.account_id,
    PanelEvent.account_id, PersonPreference.account_id, DigestSubscription.account_id,
    DigestDelivery.account_id, ProjectSettings.updated_by,
)


def due_tenants(session: Session, now: datetime) -> list[int]:
    """Installed tenants whose next report is due (never reported counts as due)."""
    scheduled = dict(
        session.execute(select(PrivacyCycle.tenant_id, PrivacyCycle.next_run_at)).all()
    )
    installed = session.scalars(select(Tenant.id).where(Tenant.installed.is_(True))).all()
    return [t for t in installed if t not in scheduled or scheduled[t] <= now]


def _cycle(session: Session, tenant_id: int) -> PrivacyCycle:
    cycle = session.scalar(select(PrivacyCycle).where(PrivacyCycle.tenant_id == tenant_id))
    if cycle is None:
        cycle = PrivacyCycle(tenant_id=tenant_id, period_seconds=DEFAULT_PERIOD)
        session.add(cycle)
    return cycle


def _post_batch(
    client: Any, batch: list[tuple[str, datetime]]
) -> tuple[list[dict[str, Any]], int | None]:
    """Report one batch; returns the host's per-account answers and its Cycle-Period in seconds."""
    body = {"accounts": [{"accountId": a, "updatedAt": _iso(at)} for a, at in batch]}
    response = client.request("POST", REPORT_PATH, json=body)
    period = response.headers.get("Cycle-Period")
    answers = (
        response.json().get("accounts", [])
        if response.status_code == 200 and response.content
        else []
    )
    hours = int(period) if period and period.strip().isdigit() else None
    return answers, hours * 3600 if hours else None


def _refresh_person(session: Session, tenant: Tenant, client: Any, account_id: str) -> None:
    """Re-read a person's public profile (`updated`), or forget name and avatar if it is gone."""
    person = session.scalar(
        select(Person).where(Person.tenant_id == tenant.id, Person.account_id == account_id)
    )
    if person is None:
        return
    path = "/wiki/rest/api/user" if tenant.product_type == "confluence" else "/rest/api/3/user"
    try:
        profile = client.request("GET", path, params={"accountId": account_id}).json()
    except HostError as exc:
        if exc.status not in (403, 404):
            raise
        profile = {}
    person.display_name = profile.get("displayName") or None
    # Jira's user says `active`, Confluence's its `accountStatus`: a deactivated one is not suggested.
    said = people.said_active(profile)
    if said is not None:
        person.active = said
    person.avatar_url = _avatar(client, profile, tenant.display_url)


def _avatar(client: Any, profile: dict[str, Any], site: str | None) -> str | None:
    """The profile's avatar as panels show it (Jira's 48 px one, Confluence's picture), if any.

    Why not keep the stored one when none is given: the host reports the account because its
    personal data changed, and a profile gone or hidden must not leave its old picture behind.
    """
    jira = (profile.get("avatarUrls") or {}).get("48x48")
    found = jira or people.picture_url(client, (profile.get("profilePicture") or {}).get("path"), site)
    return str(found)[:2000] if found else None


def report_tenant(
    db: Database, tenant_id: int, client: Any, now: datetime | None = None,
    erased: Callable[[list[str]], None] | None = None,
) -> dict[str, int]:
    """Run one tenant's reporting cycle; each batch's erasures commit with that batch.

    `erased` hears each batch's closed accounts before their erasure commits (for what the
    database does not hold: recent views and permission answers in Redis); when it fails, the
    batch's erasure is rolled back and the next run reports those accounts again.
    """
    now = now or utcnow()
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            return {}
        held = accounts_held(session, tenant_id, tenant.created_at)
    closed = updated = 0
    period: int | None = None
    for start in range(0, len(held), BATCH):
        answers, asked = _post_batch(client, held[start : start + BATCH])
        period = asked or period
        gone: list[str] = []
        with db.session() as session:
            for answer in answers:
                account = str(answer.get("accountId") or "")
                if answer.get("status") == "closed" and account:
                    privacy.erase_person(session, tenant_id, account, closed=True)
                    gone.append(account)
                elif answer.get("status") == "updated" and account:
                    _refresh_person(session, tenant, client, account)
                    updated += 1
            if erased is not None and gone:
                # Before the erasure commits: once it has, these accounts are no longer held,
                # so no later report names them, and what `erased` failed to drop stayed.
                erased(gone)
        closed += len(gone)
    with db.session() as session:
        learned = people.check_activity(session, tenant_id, client, tenant.product_type)
        if tenant.product_type == "confluence":  # people its pages named before Inflow asked who is an app
            learned += accounts.learn(session, tenant_id, client, ACTIVITY_LIMIT)
    _schedule(db, tenant_id, now, period, len(held), closed)
    return {"reported": len(held), "closed": closed, "updated": updated, "learned": learned}


def _schedule(
    db: Database, tenant_id: int, now: datetime, period: int | None, reported: int, closed: int
) -> None:
    with db.session() as session:
        cycle = _cycle(session, tenant_id)
        cycle.period_seconds = period or cycle.period_seconds or DEFAULT_PERIOD
        cycle.last_run_at, cycle.next_run_at = now, now + timedelta(seconds=cycle.period_seconds)
        cycle.accounts_reported, cycle.accounts_closed, cycle.last_error = reported, closed, None


def record_failure(db: Database, tenant_id: int, error: BaseException) -> None:
    """Keep the error on the cycle row (the next run is not postponed)."""
    with db.session() as session:
        _cycle(session, tenant_id).last_error = f"{type(error).__name__}: {error}"[:2000]
