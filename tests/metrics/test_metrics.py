"""/metrics: request latency, queue depth, failed jobs, pending events, suggestions served and used."""
from __future__ import annotations

from flask import Flask

from connect.db import utcnow
from connect.models import WebhookEvent
from jobs.core import get_queue, redis_connection
from plugin.models.social import PanelEvent
from tests.conftest import build_app, install_tenant

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def _scrape(app: Flask, **kw: object) -> str:
    response = app.test_client().get("/metrics", environ_base={**LOCAL, **kw.pop("environ", {})}, **kw)
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/plain"
    assert response.headers["Content-Type"].count("charset") == 1
    return response.get_data(as_text=True)


def test_metrics_report_request_latency_by_route(app: Flask) -> None:
    app.test_client().get("/healthz")
    text = _scrape(app)
    assert 'inflow_http_request_duration_seconds_bucket{endpoint="' in text
    assert 'inflow_http_request_duration_seconds_count' in text


def test_metrics_count_suggestions_shown_and_used_and_pending_events(app: Flask) -> None:
    db = app.extensions["inflow.db"]
    tenant = install_tenant(db)
    with db.session() as session:
        for kind in ("shown", "shown", "used", "viewed"):
            session.add(PanelEvent(tenant_id=tenant.tenant_id, panel="reuse", kind=kind, source="jira",
                                   item_key="AMQ-1", project="AMQ", account_id="u1", at=utcnow()))
        session.add(WebhookEvent(tenant_id=tenant.tenant_id, event_key="k1", event_type="jira:issue_updated",
                                 product="jira", item_ref="AMQ-1", event_ts=1, payload={}))
    text = _scrape(app)
    assert 'inflow_suggestions_served{panel="reuse"} 2.0' in text
    assert 'inflow_suggestions_used{panel="reuse"} 1.0' in text
    assert "inflow_webhook_events_pending 1.0" in text


def test_metrics_report_queue_depth_and_failures_from_redis(sqlite_url: str, redis_url: str) -> None:
    app = build_app(sqlite_url, REDIS_URL=redis_url)
    app.extensions["inflow.redis_url"] = redis_url
    get_queue(redis_connection(redis_url)).enqueue("jobs.pipeline.process_event", 1)
    text = _scrape(app)
    assert 'inflow_queue_depth{queue="inflow"} 1.0' in text
    assert 'inflow_job_failures{queue="inflow"} 0.0' in text
    assert "inflow_redis_up 1.0" in text


def test_metrics_are_hidden_from_remote_and_proxied_scrapes(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 404
    assert client.get("/metrics", environ_base=LOCAL,
                      headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404


def test_metrics_token_is_required_when_configured(sqlite_url: str) -> None:
    app = build_app(sqlite_url, INFLOW_METRICS_TOKEN="s3cret")
    client = app.test_client()
    assert client.get("/metrics", environ_base=LOCAL).status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"},
                    environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert ok.status_code == 200
