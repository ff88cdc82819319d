"""Backfill: every issue, page and blog post of a site, page by page, resumable and one at a time.

Each REST page is written in one transaction together with the checkpoint that follows it, so a
killed run resumes exactly after the last committed page and nothing is stored twice. A lease on
the tenant's `BackfillState` row (plus the job's deterministic id) keeps one backfill per tenant.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from connect.db import Database, utcnow
from connect.models import Tenant
from plugin import search
from plugin.content.normalize import confluence_page_to_doc, jira_issue_to_doc
from plugin.matching import precompute
from plugin.matching.store import refresh_statistics
from plugin.models.content import Item, StoredSuggestion
from plugin.models.pipeline import BackfillState
from plugin.pipeline import fetch, versions
from plugin.pipeline.site_url import site_url
from plugin.search import FRESH_WAIT
from plugin.services import accounts, privacy

JQL = 'created >= "1970-01-01" ORDER BY created ASC, key ASC'
JIRA_PAGE = 100
CONFLUENCE_PAGE = 250
LEASE = timedelta(minutes=10)
MAX_ERRORS = 20

Progress = Callable[[int, int | None], None]


class LeaseLost(RuntimeError):
    """Another run holds this tenant's backfill lease."""


class Restarted(RuntimeError):
    """A restart was asked for while this run held the lease: the run starts over."""


def _still_running(state: BackfillState, tenant_id: int) -> None:
    # `request_backfill(restart=True)` sets a running backfill back to queued: the run holding
    # the lease would otherwise write its old checkpoint over the restart and finish it as done.
    if state.status != "running":
        raise Restarted(f"backfill of tenant {tenant_id} restarted")


def new_owner() -> str:
    """A lease owner id naming this host and process (so a dead holder can be recognised)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_dead(owner: str | None) -> bool:
    """True when the lease holder was a process on this host that no longer exists."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _state(session: Session, tenant_id: int, lock: bool = False) -> BackfillState | None:
    query = select(BackfillState).where(BackfillState.tenant_id == tenant_id)
    return session.scalars(query.with_for_update() if lock else query).first()


def request_backfill(session: Session, tenant_id: int, restart: bool = False) -> BackfillState:
    """Ask for a backfill; a finished one starts over, a queued or running one is left as it is."""
    # At install, before any event of the site is stored: a page edited before the backfill
    # runs must not credit someone who erased their data in the site's other product.
    privacy.inherit_erasures(session, tenant_id)
    state = _state(session, tenant_id, lock=True)
    if state is None:
        state = BackfillState(
            tenant_id=tenant_id,
            status="queued",
            checkpoint={},
            errors=[],
            items_done=0,
            runs=0,
            resumed_from_checkpoint=0,
        )
        session.add(state)
    elif restart or state.status == "done":
        state.status, state.checkpoint, state.items_done, state.items_total = "queued", {}, 0, None
        state.started_at = state.finished_at = None
    elif state.status == "failed":
        state.status = "queued"  # resumes from its checkpoint
    state.requested_at = utcnow()
    session.flush()
    return state


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def backfill_status(session: Session, tenant_id: int) -> dict[str, Any]:
    """What the admin page shows: status, progress, the last errors and when it ran."""
    state = _state(session, tenant_id)
    if state is None:
        return {
            "status": "never",
            "items_done": 0,
            "items_total": None,
            "errors": [],
            "phase": None,
            "started_at": None,
            "finished_at": None,
        }
    return {
        "status": state.status,
        "items_done": state.items_done,
        "items_total": state.items_total,
        "errors": list(state.errors or [])[-5:],
        "phase": (state.checkpoint or {}).get("phase"),
        "runs": state.runs,
        "requested_at": _iso(state.requested_at),
        "started_at": _iso(state.started_at),
        "finished_at": _iso(state.finished_at),
    }


def acquire(db: Database, tenant_id: int, owner: str, now: datetime | None = None) -> bool:
    """Take the tenant's backfill lease (free, expired, or held by a dead local process)."""
    now = now or utcnow()
    with db.session() as session:
        state = _state(session, tenant_id, lock=True) or request_backfill(session, tenant_id)
        held = state.lease_owner and state.lease_until and state.lease_until > now
        if held and state.lease_owner != owner and not _holder_dead(state.lease_owner):
            return False
        if state.status == "done" and not state.checkpoint:
            return False  # nothing asked for since the last complete run
        state.lease_owner, state.lease_until = owner, now + LEASE
        state.runs = (state.runs or 0) + 1
        if state.checkpoint:
            state.resumed_from_checkpoint = (state.resumed_from_checkpoint or 0) + 1
        state.status, state.started_at = "running", state.started_at or now
        return True


def _save_page(
    session: Session,
    tenant_id: int,
    owner: str,
    docs: list[Any],
    checkpoint: dict[str, Any],
    total: int | None = None,
) -> int:
    """Write one page of documents with the checkpoint after it; returns items done so far."""
    state = _state(session, tenant_id, lock=True)
    if state is None or state.lease_owner != owner:
        raise LeaseLost(f"backfill lease of tenant {tenant_id} lost")
    _still_running(state, tenant_id)
    versions.apply_docs(session, tenant_id, docs)
    state.checkpoint = checkpoint
    state.items_done = (state.items_done or 0) + len(docs)
    state.items_total = total if total is not None else state.items_total
    state.lease_until = utcnow() + LEASE
    return state.items_done


def finish(db: Database, tenant_id: int, owner: str, error: BaseException | None = None) -> None:
    """Release the lease, recording success (checkpoint cleared) or the error (checkpoint kept)."""
    with db.session() as session:
        state = _state(session, tenant_id, lock=True)
        if state is None or state.lease_owner != owner:
            return
        if error is None:
            _still_running(state, tenant_id)
        state.lease_owner, state.lease_until = None, None
        if error is None:
            state.status, state.checkpoint, state.finished_at = "done", {}, utcnow()
            return
        entry = {"at": utcnow().isoformat(), "error": f"{type(error).__name__}: {error}"[:500]}
        state.errors = (list(state.errors or []) + [entry])[-MAX_ERRORS:]
        state.status = "failed"


def _checkpoint(db: Database, tenant_id: int) -> dict[str, Any]:
    with db.session() as session:
        state = _state(session, tenant_id)
        return dict(state.checkpoint or {}) if state else {}


def _jira_total(client: Any) -> int | None:
    """The approximate number of issues (the enhanced search returns no total)."""
    try:
        response = client.request("POST", "/rest/api/3/search/approximate-count", json={"jql": JQL})
        return int(response.json().get("count"))
    except Exception:  # noqa: BLE001  (a progress total is a nicety; the backfill goes on)
        return None


def _site_url(db: Database, tenant: Tenant, client: Any) -> str:
    with db.session() as session:
        return site_url(session, tenant, lambda: client)


def _backfill_jira(
    db: Database, tenant: Tenant, client: Any, owner: str, progress: Progress | None
) -> None:
    checkpoint = _checkpoint(db, tenant.id)
    if checkpoint.get("phase") == "done":
        return
    total, site = _jira_total(client), _site_url(db, tenant, client)
    jira = client.jira()

    def search(token: str | None) -> dict[str, Any]:
        return jira.enhanced_jql(
            JQL, fields=fetch.JIRA_FIELDS, nextPageToken=token, limit=JIRA_PAGE
        )

    # One page is fetched while the previous one is written: two requests in flight at most.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-fetch") as pool:
        pending: Future[dict[str, Any]] | None = pool.submit(search, checkpoint.get("next"))
        while pending is not None:
            page = pending.result()
            token = page.get("nextPageToken")
            last = bool(page.get("isLast")) or not token
            pending = None if last else pool.submit(search, token)
            docs = [jira_issue_to_doc(issue, site) for issue in page.get("issues") or []]
            with db.session() as session:
                done = _save_page(
                    session,
                    tenant.id,
                    owner,
                    docs,
                    {"phase": "done" if last else "jira", "next": token},
                    total,
                )
            if progress:
                progress(done, total)


def _spaces(client: Any) -> dict[str, str]:
    """Every space id mapped to its key (pages carry only the id)."""
    spaces: dict[str, str] = {}
    path: str | None = "/wiki/api/v2/spaces"
    params: dict[str, Any] | None = {"limit": 250}
    while path:
        data = client.request("GET", path, params=params).json()
        spaces.update(
            {str(s["id"]): str(s.get("key") or s["id"]) for s in data.get("results") or []}
        )
        path, params = fetch.next_path(data), None
    return spaces


CONFLUENCE_PHASES = ("page", "blogpost", "done")


def _backfill_confluence(
    db: Database, tenant: Tenant, client: Any, owner: str, progress: Progress | None
) -> None:
    checkpoint = _checkpoint(db, tenant.id)
    phase, path = checkpoint.get("phase") or "page", checkpoint.get("next")
    spaces, site = _spaces(client), _site_url(db, tenant, client)
    while phase != "done":
        collection = fetch.CONFLUENCE_COLLECTIONS[phase]
        params = None if path else {"body-format": "storage", "limit": CONFLUENCE_PAGE}
        data = client.request("GET", path or f"/wiki/api/v2/{collection}", params=params).json()
        docs = [
            confluence_page_to_doc(c, site, kind=phase, space_key=spaces.get(str(c.get("spaceId"))))
            for c in data.get("results") or []
            if c.get("status", "current") == "current"
        ]
        path = fetch.next_path(data)
        if path is None:
            phase = CONFLUENCE_PHASES[CONFLUENCE_PHASES.index(phase) + 1]
        with db.session() as session:
            docs = accounts.screened(session, tenant.id, client, docs)
            done = _save_page(session, tenant.id, owner, docs, {"phase": phase, "next": path})
        if progress:
            progress(done, None)


def run_backfill(
    db: Database,
    tenant_id: int,
    client_for: Callable[[Tenant], Any],
    owner: str | None = None,
    progress: Progress | None = None,
) -> bool:
    """Run (or resume) the tenant's backfill to the end; False when another run holds the lease.

    A restart asked for meanwhile starts the run over from the beginning.
    """
    owner = owner or new_owner()
    while acquire(db, tenant_id, owner):
        try:
            _read_site(db, tenant_id, client_for, owner, progress)
            finish(db, tenant_id, owner)
            return True
        except Restarted:
            continue  # the lease is still ours: acquired again, with the checkpoint cleared
        except BaseException as exc:
            finish(db, tenant_id, owner, exc)
            raise
    return False


def _read_site(db: Database, tenant_id: int, client_for: Callable[[Tenant], Any], owner: str,
               progress: Progress | None) -> None:
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is not None:  # before any of its work is stored
            privacy.inherit_erasures(session, tenant_id)
    if tenant is None or not tenant.installed:
        raise LookupError(f"tenant {tenant_id} is not installed")
    client = client_for(tenant)
    if tenant.product_type == "confluence":
        _backfill_confluence(db, tenant, client, owner, progress)
    else:
        _backfill_jira(db, tenant, client, owner, progress)


def _unsuggested(tenant_id: int) -> ColumnElement[bool]:
    """SQL: the item (of that tenant) has no stored suggestions."""
    # Scoped by tenant so the (tenant, item, kind) unique index answers each probe: by item alone
    # every probe scanned the table (25.8 s per call at 20,000 items, 15,000 of them done).
    return ~select(StoredSuggestion.id).where(
        StoredSuggestion.tenant_id == tenant_id, StoredSuggestion.item_id == Item.id).exists()


def items_without_suggestions(session: Session, tenant_id: int, limit: int, after: int = 0,
                              upto: int | None = None) -> list[int]:
    """Ids above `after` (and up to `upto`) of the tenant's items that have no stored suggestions
    yet, in id order."""
    return list(
        session.scalars(
            # `tenant_id + 0`: walk the ids from `after` on by primary key, not the tenant's index.
            select(Item.id)
            .where((Item.tenant_id + 0) == tenant_id, Item.id > after, _unsuggested(tenant_id),
                   *([Item.id <= upto] if upto is not None else []))
            .order_by(Item.id)
            .limit(limit)
        )
    )


def left_without_suggestions(session: Session, tenant_id: int, written_before: datetime) -> bool:
    """Whether an item of the tenant last written before that moment still has no stored suggestions."""
    # Through the tenant's own index: walking ids by primary key, as the fill does from where
    # it stopped, would read every other site's items too.
    found = session.scalar(select(Item.id).where(
        Item.tenant_id == tenant_id, Item.indexed_at < written_before, _unsuggested(tenant_id)).limit(1))
    return found is not None


def fill_suggestions(db: Database, tenant_id: int, batch: int = 50) -> int:
    """Store suggestions for every item that has none (after a backfill); resumable, idempotent.

    Kept out of the backfill itself: ranking costs far more per item than storing it, and panels
    rank on demand until an item's suggestions are stored. Each batch starts after the last one,
    so done items are not walked again. Each item commits on its own: on SQLite a batch in one
    transaction held the write lock through all its rankings, and a panel's adoption record
    waited behind it for seconds (the busy handler sleeps between tries and kept missing the
    moment between two batches).
    """
    search.catch_up(db, tenant_id, timeout=FRESH_WAIT)  # rank on every item the backfill stored
    with db.session() as session:
        # The walk by primary key stays within the tenant's ids: on a database many sites share,
        # from 0 to the end it read every other site's items (items stored since get refreshed).
        low, high = session.execute(select(func.min(Item.id), func.max(Item.id))
                                    .where(Item.tenant_id == tenant_id)).one()
    if low is None:
        return 0
    count, after = 0, low - 1
    while True:
        with db.session() as session:
            # The table grows from empty here, faster than autovacuum keeps its statistics.
            refresh_statistics(session, ["stored_suggestions"])
            ids = items_without_suggestions(session, tenant_id, batch, after, upto=high)
        for item_id in ids:
            with db.session() as session:
                precompute.refresh_suggestions(session, tenant_id, item_id)
        count += len(ids)
        after = ids[-1] if ids else after
        if len(ids) < batch:
            return count
