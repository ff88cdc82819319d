"""`GET /healthz`: database, Redis and queue depth; 200 when healthy, 503 when not."""
from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from jobs.core import enqueue_unique, redis_connection
from plugin.app import create_app
from plugin.config import Settings
from tests.conftest import build_app, free_port


def client_for(database_url: str, redis_url: str | None) -> FlaskClient:
    app = build_app(database_url, REDIS_URL=redis_url)
    return app.test_client()


def test_healthy_with_database_and_redis_reports_queue_depth(tmp_path: Path,
                                                              redis_url: str) -> None:
    enqueue_unique(redis_connection(redis_url), "tests.runtime.periodic_funcs.tick",
                   job_id="health-probe")
    response = client_for(f"sqlite:///{tmp_path / 'h.db'}", redis_url).get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True}
    assert body["redis"]["ok"] is True
    assert body["redis"]["queues"] == {"inflow": 1, "inflow-refresh": 0, "inflow-backlog": 0,
                                         "inflow-bulk": 0}


def test_unreachable_redis_is_503(tmp_path: Path) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    response = client_for(f"sqlite:///{tmp_path / 'h.db'}", unreachable).get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is False and body["redis"]["error"]


def test_the_server_address_says_what_it_is_and_links_install_and_health(tmp_path: Path) -> None:
    client = client_for(f"sqlite:///{tmp_path / 'h.db'}", None)
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    links = [link for link in ("/forge/manifest.yml", "/jira/atlassian-connect.json",
                               "/confluence/atlassian-connect.json", "/healthz", "/api/openapi.json")
             if f'href="{link}"' in html]
    assert len(links) == 5
    # Unset, the manifest's app id is a placeholder: the page says so and names the step that sets it.
    assert "forge register" in html and "INFLOW_FORGE_APP_ID is not set" in html
    client.application.config["INFLOW_FORGE_APP_ID"] = "ari:cloud:ecosystem::app/8a7c31b2-5f4e-4c4e-9d55-0c1f5b2e6a10"
    assert "is not set" not in client.get("/").get_data(as_text=True)
    for link in links:
        assert client.get(link).status_code == 200, link


def test_without_redis_configured_the_web_app_is_still_healthy(tmp_path: Path) -> None:
    response = client_for(f"sqlite:///{tmp_path / 'h.db'}", None).get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["redis"] == {"ok": True, "configured": False}


def test_unreachable_database_is_503() -> None:
    settings = Settings.from_env({"DATABASE_URL": f"postgresql://inflow@127.0.0.1:{free_port()}/x"})
    app = create_app({"TESTING": True}, settings=settings)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"]["ok"] is False


def test_the_search_shards_are_reported_not_judged(tmp_path: Path) -> None:
    from plugin import search
    from tests.matching.helpers import doc, store

    client = client_for(f"sqlite:///{tmp_path / 'h.db'}", None)
    body = client.get("/healthz").get_json()
    assert body["search"] == {"shards": {"0": {"readable": False}}} and body["status"] == "ok"
    db = client.application.extensions["inflow.db"]
    from tests.conftest import install_tenant
    store(db, install_tenant(db).tenant_id, doc("APP-1", "Disk full"))
    assert search.catch_up(db)
    assert client.get("/healthz").get_json()["search"] == {"shards": {"0": {"readable": True, "sites_behind": 0}}}
