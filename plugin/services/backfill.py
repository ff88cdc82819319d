"""The backfill as the project admin page shows it: the pipeline's status plus its last checkpoint."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models.pipeline import BackfillState
from plugin.pipeline.backfill import LEASE, backfill_status


def _checkpoint_at(state: BackfillState | None) -> datetime | None:
    """When the last page was committed with its checkpoint.

    Why derived from the lease: the pipeline extends the lease to now + LEASE in the same
    transaction as each checkpoint, and keeps no other timestamp of it.
    """
    if state is None:
        return None
    if state.status == "running" and state.lease_until is not None:
        return state.lease_until - LEASE
    return state.finished_at if state.status == "done" else None


def admin_status(session: Session, tenant_id: int) -> dict[str, Any]:
    """Status, items done (and total when known), last checkpoint time and the latest errors."""
    status = backfill_status(session, tenant_id)
    state = session.scalar(select(BackfillState).where(BackfillState.tenant_id == tenant_id))
    moment = _checkpoint_at(state)
    return {**status, "checkpoint_at": moment.isoformat() if moment else None,
            "active": status["status"] in ("queued", "running")}
