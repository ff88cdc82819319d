"""Adoption metrics: panel events recorded as they happen, summarised per week for admins."""
from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connect.db import utcnow
from plugin.models.social import Kudos, PanelEvent, Question

WEEKS = 12
# The panels whose "shown" is a suggestion shown; the contributors panel lists the issue's own people.
SUGGESTING = ("experts", "reuse")


def record(session: Session, tenant_id: int, panel: str, kind: str, source: str, key: str,
           project: str | None, account_id: str | None, target: str | None = None,
           at: datetime | None = None) -> None:
    """Store one adoption event (viewed, shown, used or clicked)."""
    session.add(PanelEvent(tenant_id=tenant_id, panel=panel, kind=kind, source=source,
                           item_key=key, project=project, account_id=account_id,
                           target=target, at=at or utcnow()))


def week_start(moment: datetime | date) -> date:
    """The Monday (UTC) of the week holding `moment`."""
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def _weeks(now: datetime, count: int) -> list[date]:
    last = week_start(now)
    return [last - timedelta(weeks=count - 1 - i) for i in range(count)]


def _issue_shares(session: Session, tenant_id: int, project: str,
                  since: datetime) -> dict[date, dict[str, Any]]:
    rows = session.execute(select(PanelEvent.kind, PanelEvent.item_key, PanelEvent.panel,
                                  PanelEvent.at).where(
        PanelEvent.tenant_id == tenant_id, PanelEvent.project == project,
        PanelEvent.at >= since)).all()
    sets: dict[date, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    clicks: dict[date, int] = defaultdict(int)
    for kind, key, panel, at in rows:
        if kind == "shown" and panel not in SUGGESTING:
            kind = "viewed"  # still an issue viewed: the share's denominator
        sets[week_start(at)][kind].add(key)
        if kind == "clicked" and panel == "reuse":
            clicks[week_start(at)] += 1
    out: dict[date, dict[str, Any]] = {}
    for week, by_kind in sets.items():
        viewed = by_kind["viewed"] | by_kind["shown"]
        # "Issues this week where one was used": of those issues. A verdict can be said on an
        # issue whose panel was not opened that week (or a made-up key), outside the share.
        used = by_kind["used"] & viewed
        out[week] = {"viewed": len(viewed),
                     "shown_share": round(len(by_kind["shown"]) / (len(viewed) or 1), 3),
                     "used_share": round(len(used) / (len(viewed) or 1), 3),
                     "reuse_clicks": clicks[week]}
    return out


def _questions(session: Session, tenant_id: int, project: str,
               since: datetime) -> dict[date, dict[str, Any]]:
    rows = session.execute(select(Question.asked_at, Question.answered_at).where(
        Question.tenant_id == tenant_id, Question.project == project,
        Question.asked_at >= since)).all()
    weeks: dict[date, dict[str, Any]] = defaultdict(lambda: {"asked": 0, "answered": 0, "hours": []})
    for asked_at, answered_at in rows:
        week = weeks[week_start(asked_at)]
        week["asked"] += 1
        if answered_at is not None:
            week["answered"] += 1
            week["hours"].append((answered_at - asked_at).total_seconds() / 3600)
    return weeks


def _kudos(session: Session, tenant_id: int, project: str, since: datetime) -> dict[date, int]:
    prefix = f"{project}-"
    # The key's prefix compared as is: in LIKE, a key's `_` matches any letter (A_B counted
    # AXB-1), and SQLite's LIKE ignores case.
    rows = session.scalars(select(Kudos.created_at).where(
        Kudos.tenant_id == tenant_id, Kudos.source == "jira",
        func.substr(Kudos.item_key, 1, len(prefix)) == prefix, Kudos.created_at >= since)).all()
    counts: dict[date, int] = defaultdict(int)
    for at in rows:
        counts[week_start(at)] += 1
    return counts


def dashboard(session: Session, tenant_id: int, project: str, now: datetime | None = None,
              weeks: int = WEEKS) -> dict[str, Any]:
    """Week-by-week adoption for a project over the last `weeks` weeks (oldest first)."""
    now = now or utcnow()
    starts = _weeks(now, weeks)
    since = datetime.combine(starts[0], datetime.min.time(), tzinfo=now.tzinfo)
    shares = _issue_shares(session, tenant_id, project, since)
    questions = _questions(session, tenant_id, project, since)
    kudos = _kudos(session, tenant_id, project, since)
    series = []
    for start in starts:
        share = shares.get(start, {"viewed": 0, "shown_share": 0.0, "used_share": 0.0,
                                   "reuse_clicks": 0})
        q = questions.get(start, {"asked": 0, "answered": 0, "hours": []})
        series.append({"week": start.isoformat(), **share, "questions_asked": q["asked"],
                       "questions_answered": q["answered"],
                       "median_hours_to_answer": round(statistics.median(q["hours"]), 1)
                       if q["hours"] else None,
                       "kudos": kudos.get(start, 0)})
    return {"project": project, "weeks": series}
