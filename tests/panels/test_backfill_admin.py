"""Backfill on demand from the Jira project admin page: status, "Backfill now", admins only."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from connect.db import utcnow
from plugin.models.pipeline import BackfillState
from plugin.pipeline.backfill import LEASE, request_backfill
from tests.panels.conftest import Site

ADMIN = "chirino"
BACKFILL = "/api/admin/backfill?projectKey=AMQ"


def _states(site: Site) -> list[BackfillState]:
    with site.db.session() as session:
        rows = list(session.scalars(select(BackfillState)))
        session.expunge_all()
        return rows


def test_a_project_admin_sees_the_status_and_starts_a_backfill(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    before = site.get(BACKFILL, sub=ADMIN)
    assert before.status_code == 200
    assert before.get_json()["status"] == "never" and before.get_json()["active"] is False
    started = site.post(BACKFILL, {"restart": False}, sub=ADMIN)
    assert started.status_code == 202, started.get_json()
    assert started.get_json()["status"] == "queued" and started.get_json()["active"] is True
    [state] = _states(site)
    assert (state.tenant_id, state.status, state.items_done) == (site.tenant.tenant_id, "queued", 0)
    # Asking again while it is queued leaves the one request as it is.
    assert site.post(BACKFILL, {}, sub=ADMIN).get_json()["status"] == "queued"
    assert len(_states(site)) == 1


def test_restart_starts_a_finished_backfill_over_from_the_beginning(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    with site.db.session() as session:
        state = request_backfill(session, site.tenant.tenant_id)
        state.status, state.items_done, state.checkpoint = "failed", 250, {"phase": "jira",
                                                                           "next": "tok"}
        state.errors = [{"at": "2026-11-20T10:00:00+00:00", "error": "HostError: 503"}]
    status = site.get(BACKFILL, sub=ADMIN).get_json()
    assert status["status"] == "failed" and status["items_done"] == 250
    assert status["errors"][0]["error"] == "HostError: 503"
    html = site.page("/jira/admin?projectKey=AMQ", sub=ADMIN).get_data(as_text=True)
    assert "Backfill now" in html and "HostError: 503" in html and "250" in html
    response = site.post(BACKFILL, {"restart": True}, sub=ADMIN)
    assert response.status_code == 202
    [state] = _states(site)
    assert (state.status, state.items_done, state.checkpoint) == ("queued", 0, {})


def test_a_running_backfill_shows_its_last_checkpoint(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    checkpointed = utcnow() - timedelta(minutes=2)
    with site.db.session() as session:
        state = request_backfill(session, site.tenant.tenant_id)
        state.status, state.items_done, state.items_total = "running", 1200, 5000
        state.lease_owner, state.lease_until = "worker:1:ab", checkpointed + LEASE
    status = site.get(BACKFILL, sub=ADMIN).get_json()
    assert status["active"] is True and status["items_total"] == 5000
    assert status["checkpoint_at"][:16] == checkpointed.isoformat()[:16]
    html = site.page("/jira/admin?projectKey=AMQ", sub=ADMIN).get_data(as_text=True)
    assert "1,200 of about 5,000" in html and checkpointed.strftime("%Y-%m-%d %H:%M") in html
    assert 'data-active="true"' in html


def test_a_finished_backfill_shows_the_exact_count_read(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    with site.db.session() as session:
        state = request_backfill(session, site.tenant.tenant_id)
        state.status, state.items_done, state.items_total = "done", 4649, 4700  # the total was an estimate
        state.finished_at = utcnow()
    html = site.page("/jira/admin?projectKey=AMQ", sub=ADMIN).get_data(as_text=True)
    assert '<dd id="bf-done">4,649</dd>' in html and "No errors." in html


def test_non_admins_cannot_see_or_start_a_backfill(site: Site) -> None:
    assert site.get(BACKFILL, sub="aco").status_code == 403
    assert site.post(BACKFILL, {"restart": True}, sub="aco").status_code == 403
    assert site.post(BACKFILL, {"restart": True}, sub=None).status_code == 403
    with site.db.session() as session:
        assert session.scalar(select(func.count()).select_from(BackfillState)) == 0
    checks = site.host.calls_to("/rest/api/3/permissions/check", "POST")
    assert checks and all(call.json["accountId"] == "aco" for call in checks)


def test_bad_backfill_requests_are_4xx_and_start_nothing(site: Site) -> None:
    site.host.set_project_admin(ADMIN, "AMQ")
    bad = site.post(BACKFILL, {"restart": "later", "all": True}, sub=ADMIN)
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"restart", "all"}
    assert site.post("/api/admin/backfill", {}, sub=ADMIN).status_code == 403
    assert site.post("/api/admin/backfill?projectKey=not-a-key", {}, sub=ADMIN).status_code == 404
    raw = site.client.post(BACKFILL, data=b"[]", headers={**site.context(ADMIN),
                                                            "Content-Type": "application/json"})
    assert raw.status_code == 400
    # Without a context JWT nothing is answered at all.
    assert site.client.post(BACKFILL, json={}).status_code == 401
    assert _states(site) == []
