"""Counting a soak run honestly: processed, lost, duplicated, and the state against a clean replay.

- processed: the event row has `processed_at` AND its effect is in the item state (the item holds
  that revision or a later acknowledged one: last-writer-wins by the issue's `updated`).
- duplicated: an event whose processing committed more than once (a PostgreSQL trigger logs
  every commit that sets `processed_at`), plus contribution rows beyond the clean replay's (e.g.
  a comment-derived contribution counted twice).
- the clean replay: the acknowledged deliveries processed by the same pipeline service into a
  fresh SQLite database, one at a time with no faults.
"""
from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from connect.db import Database
from connect.models import Tenant, WebhookEvent
from plugin.models.content import Contribution, Item
from tests.soak.events import Delivery

AUDIT_SQL = """
CREATE TABLE soak_processing_log (event_id integer NOT NULL, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION soak_log_processing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO soak_processing_log (event_id) VALUES (NEW.id); RETURN NEW; END $$;
CREATE TRIGGER soak_processing AFTER UPDATE ON webhook_events FOR EACH ROW
WHEN (NEW.processed_at IS NOT NULL AND NEW.processed_at IS DISTINCT FROM OLD.processed_at)
EXECUTE FUNCTION soak_log_processing();
"""


def install_audit(db: Database) -> None:
    """Log every committed processing of an event (a second one would be a duplicate)."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql(AUDIT_SQL)


def add_tenant(db: Database, client_key: str, secret: str, base_url: str) -> int:
    """The Jira tenant whose site sends the burst."""
    with db.session() as session:
        tenant = Tenant(client_key=client_key, shared_secret=secret, base_url=base_url,
                        display_url=base_url, product_type="jira")
        session.add(tenant)
        session.flush()
        return tenant.id


def _event_rows(db: Database) -> dict[str, tuple[int, datetime | None]]:
    with db.session() as session:
        rows = session.execute(select(WebhookEvent.event_key, WebhookEvent.id,
                                      WebhookEvent.processed_at)).all()
    return {key.removeprefix("id:"): (event_id, at) for key, event_id, at in rows}


def wait_processed(db: Database, acknowledged: set[str], timeout: float) -> float:
    """Wait until every acknowledged event is processed (or time runs out); returns seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            rows = _event_rows(db)
        except Exception:  # noqa: BLE001  (the database may still be coming back)
            time.sleep(2)
            continue
        if all(ident in rows and rows[ident][1] is not None for ident in acknowledged):
            break
        time.sleep(2)
    return time.monotonic() - started


def item_state(db: Database) -> tuple[dict[str, tuple[Any, ...]], Counter]:
    """Items by key (their stored content) and the multiset of contributions."""
    with db.session() as session:
        items = {row.key: (row.title, row.text, row.comments_text, row.status, row.resolution,
                           tuple(row.labels or ()), row.updated.isoformat(), row.project)
                 for row in session.scalars(select(Item))}
        contributions = Counter(session.execute(
            select(Item.key, Contribution.account_id, Contribution.role, Contribution.at)
            .join(Item, Item.id == Contribution.item_id)).all())
    contributions = Counter({(k, a, r, at.isoformat()): n
                             for (k, a, r, at), n in contributions.items()})
    return items, contributions


def replay(deliveries: list[Delivery], acknowledged: set[str],
           site: ReplaySite | None = None) -> tuple[dict, Counter]:
    """The acknowledged deliveries processed into a fresh database with no faults.

    With `site`, the replay's tenant is that site (events that re-read their item read it there).
    """
    from plugin.pipeline import events

    folder = Path(tempfile.mkdtemp(prefix="soak-replay-"))
    db = Database(f"sqlite:///{folder / 'replay.db'}")
    db.create_all()
    key, secret, url = ("replay", "replay-secret", "https://replay.atlassian.net") \
        if site is None else (site.client_key, site.secret, site.base_url)
    tenant_id = add_tenant(db, key, secret, url)
    client_for = (lambda tenant: None) if site is None else site.client_for
    # Newest revision first: the rest are then stale and cheap, and order must not matter.
    chosen = sorted((d for d in deliveries if d.identifier in acknowledged),
                    key=lambda d: d.updated, reverse=True)
    with db.session() as session:
        for d in chosen:
            session.add(WebhookEvent(tenant_id=tenant_id, event_key=f"id:{d.identifier}",
                                     event_type="jira:issue_updated", product="jira",
                                     item_ref=f"jira:{d.key}", event_ts=d.body["timestamp"],
                                     payload=d.body))
    with db.session() as session:
        ids = list(session.scalars(select(WebhookEvent.id).order_by(WebhookEvent.id)))
    for event_id in ids:
        with db.session() as session:
            events.process_event(session, event_id, client_for)
    state = item_state(db)
    db.dispose()
    return state


@dataclass(frozen=True)
class ReplaySite:
    """The site a replay's re-reads go to: the tenant's credentials and a client factory."""

    client_key: str
    secret: str
    base_url: str
    client_for: Callable[[Any], Any]


@dataclass
class Tally:
    """The numbers of one fault run."""

    sent: int
    acknowledged: int
    processed: int
    lost: int
    duplicated: int
    state_matches: bool
    notes: list[str]


def tally(db: Database, deliveries: list[Delivery], acknowledged: set[str],
          site: ReplaySite | None = None) -> Tally:
    """Count processed, lost and duplicated events and compare the state with a clean replay."""
    rows = _event_rows(db)
    items, contributions = item_state(db)
    with db.session() as session:
        commits = Counter(session.execute(text("SELECT event_id FROM soak_processing_log"))
                          .scalars().all())
    processed = 0
    for d in deliveries:
        if d.identifier not in acknowledged:
            continue
        row = rows.get(d.identifier)
        item = items.get(d.key)
        if row and row[1] is not None and item and item[6] >= d.updated.isoformat():
            processed += 1
    expected_items, expected_contributions = replay(deliveries, acknowledged, site)
    surplus = sum((contributions - expected_contributions).values())
    twice = sum(n - 1 for n in commits.values() if n > 1)
    notes = []
    matches = items == expected_items and contributions == expected_contributions
    if not matches:
        differing = sorted(k for k in set(items) | set(expected_items)
                           if items.get(k) != expected_items.get(k))
        missing = sum((expected_contributions - contributions).values())
        notes.append(f"state differs from the clean replay: items {differing[:10]}, "
                     f"{missing} contributions missing, {surplus} extra")
    stored_2xx = sum(1 for ident in acknowledged if ident in rows)
    if stored_2xx != len(acknowledged):
        notes.append(f"{len(acknowledged) - stored_2xx} acknowledged deliveries were not stored")
    return Tally(len(deliveries), len(acknowledged), processed, len(acknowledged) - processed,
                 twice + surplus, matches, notes)


def count_events(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count(WebhookEvent.id))) or 0)


@dataclass
class Result:
    """One fault's tally, whether it held, and any lines it adds to the summary."""

    tally: Tally
    healthy: bool
    lines: list[str]
