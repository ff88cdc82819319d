"""A person's own data: what Inflow knows about them, export as JSON, and erasure everywhere."""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from plugin.matching.store import erase_person as erase_from_matching
from plugin.models.content import Contribution, Item, Person
from plugin.models.pipeline import DigestDelivery
from plugin.models.social import (
    Feedback,
    Kudos,
    PanelEvent,
    PersonPreference,
    Question,
    QuestionEvent,
)
from plugin.pipeline.digests import is_subscribed, set_subscription


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def contributions(session: Session, tenant_id: int, account_id: str,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """A person's recorded contributions with the item each is on, newest first."""
    query = (select(Contribution, Item).join(Item, Item.id == Contribution.item_id)
             .where(Contribution.tenant_id == tenant_id, Contribution.account_id == account_id)
             .order_by(Contribution.at.desc()))
    rows = session.execute(query.limit(limit) if limit else query).all()
    return [{"role": c.role, "at": _iso(c.at), "source": i.source, "key": i.key,
             "title": i.title, "url": i.url, "project": i.project, "space": i.space}
            for c, i in rows]


def topics(session: Session, tenant_id: int, account_id: str, limit: int = 8) -> list[str]:
    """What a person is known for: the labels, components, projects and spaces they worked in."""
    rows = session.scalars(select(Item).join(Contribution, Contribution.item_id == Item.id).where(
        Contribution.tenant_id == tenant_id, Contribution.account_id == account_id)).all()
    counts: Counter[str] = Counter()
    for item in rows:
        for topic in [*(getattr(item, "labels", None) or []),
                      *(getattr(item, "components", None) or []), item.project or item.space]:
            if topic:
                counts[str(topic)] += 1
    return [topic for topic, _ in counts.most_common(limit)]


def _rows(session: Session, model: Any, *conditions: Any) -> list[Any]:
    return list(session.scalars(select(model).where(*conditions)))


def _question(q: Question) -> dict[str, Any]:
    return {"id": q.id, "source": q.source, "key": q.item_key, "asker": q.asker_account_id,
            "expert": q.expert_account_id, "text": q.text, "state": q.state,
            "asked_at": _iso(q.asked_at), "answered_at": _iso(q.answered_at)}


def export_person(session: Session, tenant_id: int, account_id: str) -> dict[str, Any]:
    """Everything Inflow stores about one person in this tenant, as JSON-safe data."""
    person = session.scalar(select(Person).where(Person.tenant_id == tenant_id,
                                                 Person.account_id == account_id))
    pref = session.scalar(select(PersonPreference).where(
        PersonPreference.tenant_id == tenant_id, PersonPreference.account_id == account_id))
    questions = _rows(session, Question, Question.tenant_id == tenant_id, or_(
        Question.asker_account_id == account_id, Question.expert_account_id == account_id))
    kudos = _rows(session, Kudos, Kudos.tenant_id == tenant_id, or_(
        Kudos.from_account_id == account_id, Kudos.to_account_id == account_id))
    feedback = _rows(session, Feedback, Feedback.tenant_id == tenant_id,
                     Feedback.account_id == account_id)
    steps = _rows(session, QuestionEvent, QuestionEvent.tenant_id == tenant_id,
                  QuestionEvent.question_id.in_([q.id for q in questions]))
    views = _rows(session, PanelEvent, PanelEvent.tenant_id == tenant_id, PanelEvent.account_id == account_id)
    digests = _rows(session, DigestDelivery, DigestDelivery.tenant_id == tenant_id,
                    DigestDelivery.account_id == account_id)
    return {
        "account_id": account_id,
        "person": {"display_name": person.display_name, "avatar_url": person.avatar_url}
        if person else None,
        "preferences": {"opted_out": pref.opted_out, "paused_until": _iso(pref.paused_until)}
        if pref else None,
        "weekly_digest": is_subscribed(session, tenant_id, account_id),
        "topics": topics(session, tenant_id, account_id),
        "contributions": contributions(session, tenant_id, account_id),
        "questions": [_question(q) for q in questions],
        "kudos": [{"from": k.from_account_id, "to": k.to_account_id, "kind": k.kind,
                   "source": k.source, "key": k.item_key, "message": k.message,
                   "at": _iso(k.created_at)} for k in kudos],
        "feedback": [{"source": f.source, "key": f.item_key, "target_item_id": f.target_item_id,
                      "verdict": f.verdict, "at": _iso(f.updated_at)} for f in feedback],
        # Every row erasure removes is here too: the steps of their questions, their panel
        # views and actions (the adoption figures), the digests sent to them.
        "question_steps": [{"question": e.question_id, "step": e.kind, "by": e.account_id,
                            "at": _iso(e.at)} for e in steps],
        "panel_events": [{"panel": e.panel, "kind": e.kind, "source": e.source, "key": e.item_key,
                          "project": e.project, "target": e.target, "at": _iso(e.at)} for e in views],
        "digests": [{"week_start": d.week_start.isoformat(), "issue": d.issue_key, "status": d.status,
                     "sent_at": _iso(d.sent_at)} for d in digests],
    }


def erase_person(session: Session, tenant_id: int, account_id: str) -> None:
    """Remove a person's data from Inflow: social records, events, and matching's evidence."""
    question_ids = select(Question.id).where(Question.tenant_id == tenant_id, or_(
        Question.asker_account_id == account_id, Question.expert_account_id == account_id))
    session.execute(delete(QuestionEvent).where(QuestionEvent.tenant_id == tenant_id,
                                                QuestionEvent.question_id.in_(question_ids)))
    session.execute(delete(Question).where(Question.id.in_(question_ids)))
    session.execute(delete(Kudos).where(Kudos.tenant_id == tenant_id, or_(
        Kudos.from_account_id == account_id, Kudos.to_account_id == account_id)))
    session.execute(delete(Feedback).where(Feedback.tenant_id == tenant_id,
                                           Feedback.account_id == account_id))
    session.execute(delete(PanelEvent).where(PanelEvent.tenant_id == tenant_id,
                                             PanelEvent.account_id == account_id))
    # An opt-out survives erasure as the one fact kept: otherwise new work would resurface them.
    session.execute(delete(PersonPreference).where(
        PersonPreference.tenant_id == tenant_id, PersonPreference.account_id == account_id,
        PersonPreference.opted_out.is_(False)))
    set_subscription(session, tenant_id, account_id, False)
    session.execute(delete(DigestDelivery).where(DigestDelivery.tenant_id == tenant_id,
                                                 DigestDelivery.account_id == account_id))
    erase_from_matching(session, tenant_id, account_id)
    session.flush()
