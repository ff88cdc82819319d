"""What the new faults check beyond the tally: a quiet site's freshness, the index against the database.

- fresh: for each delivery of a site, the seconds from its storage (the moment it could be
  acknowledged) until its item's stored suggestions were written again after the event was
  applied. A PostgreSQL trigger logs every write of stored suggestions, so the time is the
  database's own, not a poll's.
- converged: every site's index progress names the shard's current index and has applied the
  site's last change, and the index holds exactly one document per live item of the site.
"""
from __future__ import annotations

import math
from pathlib import Path

import tantivy
from sqlalchemy import func, select, text

from connect.db import Database
from connect.models import WebhookEvent
from plugin.models.content import IndexProgress, IndexState, Item

SUGGESTION_AUDIT_SQL = """
CREATE TABLE soak_suggestion_log (tenant_id integer, item_id integer,
                                  at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION soak_log_suggestion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO soak_suggestion_log (tenant_id, item_id) VALUES (NEW.tenant_id, NEW.item_id);
RETURN NEW; END $$;
CREATE TRIGGER soak_suggestion AFTER INSERT OR UPDATE ON stored_suggestions FOR EACH ROW
WHEN (NEW.kind = 'reuse') EXECUTE FUNCTION soak_log_suggestion();
"""

FRESH_SQL = """
SELECT e.id, EXTRACT(EPOCH FROM (
         (SELECT min(l.at) FROM soak_suggestion_log l
          WHERE l.tenant_id = e.tenant_id AND l.item_id = i.id AND l.at >= e.processed_at)
         - e.received_at))
FROM webhook_events e JOIN items i ON i.tenant_id = e.tenant_id AND 'jira:' || i.key = e.item_ref
WHERE e.tenant_id = :tenant AND e.processed_at IS NOT NULL
"""


def install_suggestion_audit(db: Database) -> None:
    """Log every write of stored reuse suggestions, with the database's clock."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql(SUGGESTION_AUDIT_SQL)


def fresh_seconds(db: Database, tenant_id: int) -> list[float]:
    """Per applied event of the tenant: seconds until its item's suggestions were fresh (inf: never)."""
    with db.session() as session:
        rows = session.execute(text(FRESH_SQL), {"tenant": tenant_id}).all()
    return [math.inf if seconds is None else float(seconds) for _, seconds in rows]


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else math.nan


def _shard_docs(index_dir: Path, shard: str) -> tuple[str | None, dict[int, int]]:
    """The shard's identity and its document count per tenant, read from disk."""
    from plugin.search.shard import _read_identity

    path = index_dir / shard
    identity = _read_identity(path)
    if identity is None:
        return None, {}
    searcher = tantivy.Index.open(str(path)).searcher()
    found = searcher.aggregate(tantivy.Query.all_query(),
                               {"t": {"terms": {"field": "tenant", "size": 1_000_000}}})
    return identity, {int(b["key"]): int(b["doc_count"]) for b in found["t"]["buckets"]}


def index_converged(db: Database, index_dir: Path) -> list[str]:
    """What differs between the index and the database (empty when it converged)."""
    problems = []
    with db.session() as session:
        progress = session.execute(select(IndexProgress.tenant_id, IndexProgress.shard,
                                          IndexProgress.index_id, IndexProgress.seq)).all()
        seqs = dict(session.execute(select(IndexState.tenant_id, IndexState.seq)).all())
        items = dict(session.execute(select(Item.tenant_id, func.count(Item.id))
                                     .group_by(Item.tenant_id)).all())
    shards = {shard: _shard_docs(index_dir, shard) for shard in {row[1] for row in progress}}
    for tenant_id, shard, index_id, seq in progress:
        identity, docs = shards[shard]
        if index_id != identity or seq < seqs.get(tenant_id, 0):
            problems.append(f"tenant {tenant_id}: index {index_id} at {seq}, shard {identity}, "
                            f"database at {seqs.get(tenant_id)}")
        elif docs.get(tenant_id, 0) != items.get(tenant_id, 0):
            problems.append(f"tenant {tenant_id}: {docs.get(tenant_id, 0)} documents for "
                            f"{items.get(tenant_id, 0)} items")
    missing = set(seqs) - {row[0] for row in progress}
    problems += [f"tenant {tenant_id}: never indexed" for tenant_id in sorted(missing)]
    return problems


def unprocessed(db: Database, tenant_id: int) -> int:
    """Events of the tenant not applied yet."""
    with db.session() as session:
        return int(session.scalar(select(func.count(WebhookEvent.id)).where(
            WebhookEvent.tenant_id == tenant_id, WebhookEvent.processed_at.is_(None))) or 0)
