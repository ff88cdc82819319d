"""A person's own data: what Inflow knows about them, export as JSON, and erasure everywhere."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from connect.db import utcnow
from connect.models import Tenant
from plugin.matching.store import erase_person as erase_from_matching
from plugin.models.content import Contribution, Erasure, Item, Person
from plugin.models.pipeline import DigestDelivery
from plugin.models.social import (
    Feedback,
    Kudos,
    PanelEvent,
    PersonPreference,
    ProjectSettings,
    Question,
    QuestionEvent,
)
from plugin.pipeline.digests import is_subscribed, set_subscription
from plugin.search.sites import linked, of_site
from plugin.services import feedback
from plugin.services.settings import PEOPLE_RULES, preference, set_preference


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def contributions(session: Session, tenant_id: int, account_id: str, limit: int | None = None,
                  visible: Callable[[list[Item]], list[Item]] | None = None,
                  items: int = 10) -> list[dict[str, Any]]:
    """A person's recorded contributions on the site (both products) with the item each is on,
    newest first; with `visible`, only those on the first `items` items it keeps."""
    query = (select(Contribution, Item).join(Item, Item.id == Contribution.item_id)
             .where(of_site(Contribution.tenant_id, tenant_id), Contribution.account_id == account_id)
             .order_by(Contribution.at.desc(), Contribution.item_id.desc(), Contribution.id))
    rows: list[tuple[Contribution, Item]] = [
        (c, i) for c, i in session.execute(query.limit(limit) if limit else query)]
    if visible is not None:
        # Working on an item once is no right to read it now: it may have moved to a project
        # they are not in, or been restricted since; its title and key are not shown then.
        seen = _first_seen(list({i.id: i for _, i in rows}.values()), visible, items)
        rows = [(c, i) for c, i in rows if i.id in seen]
    return [{"role": c.role, "at": _iso(c.at), "source": i.source, "key": i.key,
             "title": i.title, "url": i.url, "project": i.project, "space": i.space}
            for c, i in rows]


def _first_seen(items: list[Item], visible: Callable[[list[Item]], list[Item]], wanted: int) -> set[int]:
    """The ids of the first `wanted` items `visible` keeps, asked `wanted` at a time (each
    Confluence page is a request of its own: the rest need not be asked)."""
    seen: set[int] = set()
    for start in range(0, len(items), wanted):
        if len(seen) >= wanted:
            break
        seen.update(item.id for item in visible(items[start:start + wanted]))
    return seen


def topics(session: Session, tenant_id: int, account_id: str, limit: int = 8) -> list[str]:
    """What a person is known for: the labels, components, projects and spaces they worked in."""
    rows = session.scalars(select(Item).join(Contribution, Contribution.item_id == Item.id).where(
        of_site(Contribution.tenant_id, tenant_id), Contribution.account_id == account_id)).all()
    counts: Counter[str] = Counter()
    for item in rows:
        for topic in [*(getattr(item, "labels", None) or []),
                      *(getattr(item, "components", None) or []), item.project or item.space]:
            if topic:
                counts[str(topic)] += 1
    # Equal counts by name: most_common keeps rows' order, which the database does not fix.
    return [topic for topic, _ in sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))[:limit]]


def _rows(session: Session, model: Any, *conditions: Any) -> list[Any]:
    return list(session.scalars(select(model).where(*conditions).order_by(model.id)))


def _question(q: Question) -> dict[str, Any]:
    return {"id": q.id, "source": q.source, "key": q.item_key, "asker": q.asker_account_id,
            "expert": q.expert_account_id, "text": q.text, "state": q.state,
            "asked_at": _iso(q.asked_at), "answered_at": _iso(q.answered_at)}


def _settings_naming(session: Session, tenants: list[int], account_id: str) -> list[dict[str, Any]]:
    """The project settings that name the person in a rule or that they saved last."""
    found = []
    for row in _rows(session, ProjectSettings, ProjectSettings.tenant_id.in_(tenants)):
        rules = [rule for rule in PEOPLE_RULES if account_id in ((row.data or {}).get(rule) or [])]
        if rules or row.updated_by == account_id:
            found.append({"project": row.project_key, "rules": rules,
                          "saved_by_them": row.updated_by == account_id, "at": _iso(row.updated_at)})
    return found


def site_tenants(session: Session, tenant_id: int) -> list[int]:
    """The tenant and every other installation of its site: indexed as one, or sharing its
    cloud id or host (a product installed since, not indexed yet; one no longer installed)."""
    indexed = session.scalars(select(Tenant.id).where(of_site(Tenant.id, tenant_id)))
    return sorted({*indexed, *linked(session, tenant_id)})


def inherit_erasures(session: Session, tenant_id: int) -> int:
    """Give a tenant the erasures made in its site's other installations; how many it lacked.

    A product installed after someone erased their data would otherwise learn their earlier
    work from its own pages or issues, as if they had never asked.
    """
    others = [t for t in site_tenants(session, tenant_id) if t != tenant_id]
    known = set(session.scalars(select(Erasure.account_id).where(Erasure.tenant_id == tenant_id)))
    latest = session.execute(select(Erasure.account_id, func.max(Erasure.erased_at))
                             .where(Erasure.tenant_id.in_(others)).group_by(Erasure.account_id))
    missing = [(account, at) for account, at in latest if account not in known]
    session.add_all(Erasure(tenant_id=tenant_id, account_id=account, erased_at=at)
                    for account, at in missing)
    session.flush()
    return len(missing)


def export_person(session: Session, tenant_id: int, account_id: str) -> dict[str, Any]:
    """Everything Inflow stores about one person on the tenant's site (both products), as JSON-safe data."""
    tenants = site_tenants(session, tenant_id)
    person = session.scalar(select(Person).where(Person.tenant_id.in_(tenants),
                                                 Person.account_id == account_id)
                            .order_by(Person.display_name.is_(None), Person.id).limit(1))
    choices = _rows(session, PersonPreference, PersonPreference.tenant_id.in_(tenants),
                    PersonPreference.account_id == account_id)
    pref = preference(session, tenant_id, account_id)
    questions = _rows(session, Question, Question.tenant_id.in_(tenants), or_(
        Question.asker_account_id == account_id, Question.expert_account_id == account_id))
    kudos = _rows(session, Kudos, Kudos.tenant_id.in_(tenants), or_(
        Kudos.from_account_id == account_id, Kudos.to_account_id == account_id))
    feedback = _rows(session, Feedback, Feedback.tenant_id.in_(tenants),
                     Feedback.account_id == account_id)
    steps = _rows(session, QuestionEvent, QuestionEvent.tenant_id.in_(tenants), or_(
        QuestionEvent.question_id.in_([q.id for q in questions]),
        QuestionEvent.account_id == account_id))
    views = _rows(session, PanelEvent, PanelEvent.tenant_id.in_(tenants), PanelEvent.account_id == account_id)
    digests = _rows(session, DigestDelivery, DigestDelivery.tenant_id.in_(tenants),
                    DigestDelivery.account_id == account_id)
    return {
        "account_id": account_id,
        "person": {"display_name": person.display_name, "avatar_url": person.avatar_url}
        if person else None,
        # The choice that holds on the site (the latest made in either product), then each made.
        "preferences": {"opted_out": pref.opted_out, "paused_until": _iso(pref.paused_until)}
        if pref else None,
        "choices": [{"product": _product(session, c.tenant_id), "opted_out": c.opted_out,
                     "paused_until": _iso(c.paused_until), "at": _iso(c.updated_at)} for c in choices],
        "weekly_digest": any(is_subscribed(session, t, account_id) for t in tenants),
        "topics": topics(session, tenant_id, account_id),
        "contributions": contributions(session, tenant_id, account_id),
        "questions": [_question(q) for q in questions],
        "kudos": [{"from": k.from_account_id, "to": k.to_account_id, "kind": k.kind,
                   "source": k.source, "key": k.item_key, "message": k.message,
                   "at": _iso(k.created_at)} for k in kudos],
        "feedback": [{"source": f.source, "key": f.item_key, "target_item_id": f.target_item_id,
                      "verdict": f.verdict, "at": _iso(f.updated_at)} for f in feedback],
        # Every row erasure removes is here too: the steps of their questions (and their steps
        # on others'), their panel views and actions (the adoption figures), the digests sent.
        "question_steps": [{"question": e.question_id, "step": e.kind, "by": e.account_id,
                            "at": _iso(e.at)} for e in steps],
        "panel_events": [{"panel": e.panel, "kind": e.kind, "source": e.source, "key": e.item_key,
                          "project": e.project, "target": e.target, "at": _iso(e.at)} for e in views],
        "digests": [{"week_start": d.week_start.isoformat(), "issue": d.issue_key, "status": d.status,
                     "sent_at": _iso(d.sent_at)} for d in digests],
        # Admins' rules naming them ("never suggest", "also suggest"), and settings they saved.
        "project_settings": _settings_naming(session, tenants, account_id),
    }


def _product(session: Session, tenant_id: int) -> str | None:
    return session.scalar(select(Tenant.product_type).where(Tenant.id == tenant_id))


def erase_person(session: Session, tenant_id: int, account_id: str,
                 closed: bool = False) -> list[int]:
    """Remove a person's data from Inflow on the tenant's site (both products): social records,
    events, and matching's evidence (and, for an account `closed`, the project rules naming
    it). Returns the tenants erased in."""
    tenants = site_tenants(session, tenant_id)
    opted_out = _still_opted_out(session, tenant_id, account_id)
    question_ids = select(Question.id).where(Question.tenant_id.in_(tenants), or_(
        Question.asker_account_id == account_id, Question.expert_account_id == account_id))
    session.execute(delete(QuestionEvent).where(QuestionEvent.tenant_id.in_(tenants), or_(
        QuestionEvent.question_id.in_(question_ids), QuestionEvent.account_id == account_id)))
    session.execute(delete(Question).where(Question.id.in_(question_ids)))
    _drop_from_next_experts(session, tenants, account_id)
    # Who saved a project's settings goes; the admins' rules naming them stay: they are the
    # site's choices, and an exclusion keeps the person out, as an opt-out kept does. A closed
    # account can be suggested nowhere again: its id is kept for nothing, and goes too.
    if closed:
        _unname_in_rules(session, tenants, account_id)
    session.execute(update(ProjectSettings).where(ProjectSettings.tenant_id.in_(tenants),
                                                  ProjectSettings.updated_by == account_id)
                    .values(updated_by=None, updated_at=ProjectSettings.updated_at)
                    .execution_options(synchronize_session=False))
    session.execute(delete(Kudos).where(Kudos.tenant_id.in_(tenants), or_(
        Kudos.from_account_id == account_id, Kudos.to_account_id == account_id)))
    # Their verdicts leave the counts too ("helped 3 people before" ranks and reads as a count).
    judged = session.scalars(select(Feedback.target_item_id).where(
        Feedback.tenant_id.in_(tenants), Feedback.account_id == account_id)).all()
    for model in (Feedback, PanelEvent, PersonPreference, DigestDelivery):
        session.execute(delete(model).where(model.tenant_id.in_(tenants), model.account_id == account_id))
    feedback.recount(session, judged)
    for tenant in tenants:
        set_subscription(session, tenant, account_id, False)
        erase_from_matching(session, tenant, account_id)
        _mark_erased(session, tenant, account_id)
    if opted_out:  # the one fact kept: otherwise new work would resurface them
        set_preference(session, tenant_id, account_id, True, None)
    session.flush()
    return tenants


def named_in_rules(session: Session, tenants: list[int]) -> set[str]:
    """The accounts the tenants' project rules name ("never suggest", "also suggest")."""
    rows = session.scalars(select(ProjectSettings.data).where(ProjectSettings.tenant_id.in_(tenants)))
    return {a for data in rows for rule in PEOPLE_RULES for a in (data or {}).get(rule) or []}


def _unname_in_rules(session: Session, tenants: list[int], account_id: str) -> None:
    """Take the account out of every project rule of these tenants (not a save: its time stays)."""
    rows = session.execute(select(ProjectSettings.id, ProjectSettings.data)
                           .where(ProjectSettings.tenant_id.in_(tenants))).all()
    for row_id, data in rows:
        if any(account_id in ((data or {}).get(rule) or []) for rule in PEOPLE_RULES):
            kept = {rule: [a for a in data[rule] if a != account_id] for rule in PEOPLE_RULES
                    if data.get(rule)}
            session.execute(update(ProjectSettings).where(ProjectSettings.id == row_id)
                            .values(data={**data, **kept}, updated_at=ProjectSettings.updated_at)
                            .execution_options(synchronize_session=False))


def _mark_erased(session: Session, tenant_id: int, account_id: str) -> None:
    """Remember the erasure, so work the host still shows from before it is never learned again."""
    marker = session.scalar(select(Erasure).where(Erasure.tenant_id == tenant_id,
                                                  Erasure.account_id == account_id))
    if marker is None:
        session.add(Erasure(tenant_id=tenant_id, account_id=account_id, erased_at=utcnow()))
    else:
        marker.erased_at = utcnow()


def _still_opted_out(session: Session, tenant_id: int, account_id: str) -> bool:
    """Whether the person's choice on the site, as it holds now, is to stay out."""
    pref = preference(session, tenant_id, account_id)
    return pref is not None and pref.opted_out


def _drop_from_next_experts(session: Session, tenants: list[int], account_id: str) -> None:
    """Nobody's question is passed to an erased person later."""
    for question in session.scalars(select(Question).where(Question.tenant_id.in_(tenants))):
        if account_id in (question.next_experts or []):
            question.next_experts = [a for a in question.next_experts if a != account_id]
