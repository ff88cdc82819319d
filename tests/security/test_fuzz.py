"""Fuzz smoke: schemathesis drives every operation of /api/openapi.json against the real app.

Valid and invalid requests (bounded, derandomised) with a valid context JWT for a viewer who
administers the project, on a tenant backed by the fake site serving real ActiveMQ issues.
No response may be a 5xx, and every documented response must match its schema.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from connect.db import Database
from plugin.services.permissions import CACHE
from sandbox.site import data
from sandbox.site.server import FakeHost
from tests.conftest import TenantAuth, build_app
from tests.panels.conftest import seed_issues
from tests.sandbox_site import install_into

VIEWER = "aco"
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
CHECKS = [not_a_server_error, response_schema_conformance]
# 5xx this test finds in files its author does not own are reported to the lead, and listed
# here ("METHOD /path": why) until fixed: findings on them are XFAIL, anything else fails.
KNOWN: dict[str, str] = {}


@pytest.fixture
def fuzz_site(tmp_path: Path, fake_host: FakeHost) -> Iterator[tuple[Any, TenantAuth]]:
    CACHE.clear()
    app = build_app(f"sqlite:///{tmp_path / 'inflow.db'}", INFLOW_APP_KEY=fake_host.app_key,
                    INFLOW_AUTH_SERVER_URL=fake_host.url)
    db: Database = app.extensions["inflow.db"]
    issues = data.jira_dataset("apache-activemq")[:40]
    fake_host.load_jira_issues(issues)
    auth = install_into(fake_host, db, "jira")
    seed_issues(db, auth.tenant_id, fake_host.base_url(), issues)
    fake_host.set_project_admin(VIEWER, "AMQ")
    yield app, auth
    db.dispose()
    CACHE.clear()


def test_the_spec_documents_every_api_route(fuzz_site: tuple[Any, TenantAuth]) -> None:
    app, _ = fuzz_site
    spec = app.test_client().get("/api/openapi.json").get_json()
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    from plugin.openapi import openapi_path

    routes = {(openapi_path(r.rule), m.lower()) for r in app.url_map.iter_rules()
              if r.rule.startswith("/api/") and r.rule != "/api/openapi.json"
              for m in (r.methods or set()) - {"HEAD", "OPTIONS"}}
    assert routes == documented
    assert all(op["summary"] != "Undocumented" for ops in spec["paths"].values()
               for op in ops.values())


def test_the_spec_names_the_query_parameters_the_views_read(
        fuzz_site: tuple[Any, TenantAuth]) -> None:
    """Without ?projectKey= the backfill routes refuse everyone: a client must learn it here."""
    app, _ = fuzz_site
    paths = app.test_client().get("/api/openapi.json").get_json()["paths"]

    def query(path: str, method: str) -> dict[str, bool]:
        return {p["name"]: p["required"] for p in paths[path][method]["parameters"]
                if p["in"] == "query"}

    assert query("/api/admin/backfill", "get") == {"projectKey": True}
    assert query("/api/admin/backfill", "post") == {"projectKey": True}
    # A page's space is the one Inflow stored: a space the request names picks no rules.
    assert query("/api/content/{source}/{key}/{panel}", "get") == {}


def test_fuzzed_api_calls_never_get_a_5xx_or_an_undocumented_shape(
        fuzz_site: tuple[Any, TenantAuth]) -> None:
    app, auth = fuzz_site
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, count in EXAMPLES.items():
            # No shrinking: a smoke run reports the failing input it met, quickly.
            @settings(max_examples=count, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                try:
                    case.call_and_validate(headers=auth.context_headers(sub=VIEWER),
                                           checks=CHECKS)
                except Exception as exc:  # collect every operation's failure, then report
                    # B023: run() is called below, in the iteration that defines it.
                    failures.append(f"{case.method} {operation.path} {mode.value}: {exc}")  # noqa: B023
                    raise

            with contextlib.suppress(Exception):  # already recorded above
                run()
    unknown = [f for f in failures if " ".join(f.split()[:2]) not in KNOWN]
    assert not unknown, "\n\n".join(unknown)
    if failures:
        pytest.xfail("known 5xx, reported: " + "; ".join(f"{op}: {why}" for op, why in KNOWN.items()
                                                       if any(f.startswith(op) for f in failures)))


# What the fuzzer found (5xx, since fixed in plugin/), kept as regressions: it does not meet
# these inputs on every seed.

def test_a_question_id_beyond_any_integer_column_is_a_404(
        fuzz_site: tuple[Any, TenantAuth]) -> None:
    app, auth = fuzz_site
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().post("/api/questions/9223372036854775808/accept", json={},
                                      headers=auth.context_headers(sub=VIEWER))
    assert response.status_code == 404


def test_asking_about_the_other_products_content_is_a_4xx(
        fuzz_site: tuple[Any, TenantAuth]) -> None:
    app, auth = fuzz_site
    response = app.test_client().post(
        "/api/questions", headers=auth.context_headers(sub=VIEWER),
        json={"source": "confluence", "key": "12345", "expert_account_id": "chirino",
              "text": "Could you help?"})
    assert 400 <= response.status_code < 500, response.status_code


@pytest.mark.parametrize("suffix", ["?x=", "#x", "/comment/../..", "%2F.."])
def test_a_key_cannot_steer_the_host_call_to_another_route(
        fuzz_site: tuple[Any, TenantAuth], fake_host: FakeHost, suffix: str) -> None:
    """A key is one escaped path segment: `A-1?x` once turned the comment POST into a 405."""
    app, auth = fuzz_site
    app.config["PROPAGATE_EXCEPTIONS"] = False
    key = data.jira_dataset("apache-activemq")[0]["key"]
    before = len(fake_host.comments(key))
    response = app.test_client().post(
        "/api/questions", headers=auth.context_headers(sub=VIEWER),
        json={"source": "jira", "key": key + suffix, "expert_account_id": "chirino",
              "text": "Could you help?"})
    assert 400 <= response.status_code < 500, response.status_code
    assert len(fake_host.comments(key)) == before
    assert all(c.path.startswith(f"/rest/api/3/issue/{key}{suffix}")
               for c in fake_host.calls_to("/rest/api/3/issue/"))


def test_real_panels_match_their_documented_shape(fuzz_site: tuple[Any, TenantAuth]) -> None:
    """Typed suggestions and experts (with evidence, marks and shared terms) as served."""
    from plugin import search
    from plugin.matching.precompute import refresh_suggestions
    from plugin.matching.store import get_item

    app, auth = fuzz_site
    key = data.jira_dataset("apache-activemq")[39]["key"]
    db: Database = app.extensions["inflow.db"]
    assert search.catch_up(db)
    with db.session() as session:
        item = get_item(session, auth.tenant_id, "jira", key)
        refresh_suggestions(session, auth.tenant_id, item.id)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operation = schema["/api/content/{source}/{key}/{panel}"]["GET"]
    client = app.test_client()
    for panel, listed in (("reuse", "suggestions"), ("experts", "experts")):
        response = client.get(f"/api/content/jira/{key}/{panel}",
                              headers=auth.context_headers(sub=VIEWER))
        assert response.status_code == 200 and response.get_json()[listed], panel
        operation.validate_response(response)


def test_project_settings_match_their_documented_shape(fuzz_site: tuple[Any, TenantAuth]) -> None:
    """Every setting the answer holds is in the description (fuzzed keys rarely name a project)."""
    app, auth = fuzz_site
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    client = app.test_client()
    for method, body in (("GET", None), ("POST", {"include_people": ["chirino"]})):
        response = client.open("/api/admin/projects/AMQ/settings", method=method, json=body,
                               headers=auth.context_headers(sub=VIEWER))
        assert response.status_code == 200, response.get_json()
        schema["/api/admin/projects/{project_key}/settings"][method].validate_response(response)


# Text no database stores or no page encodes (found by an adversarial run, since fixed).
UNSTORABLE = ["\ud800", "a\x00b"]


@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize("path, body", [
    ("/api/events", {"source": "jira", "key": "{t}", "panel": "experts", "kind": "clicked"}),
    ("/api/feedback", {"source": "jira", "key": "{t}", "target_item_id": 1, "verdict": "helpful"}),
    ("/api/kudos", {"source": "jira", "key": "AMQ-1", "to_account_id": "chirino", "message": "{t}"}),
    ("/api/questions", {"source": "jira", "key": "AMQ-1", "expert_account_id": "chirino",
                        "text": "about {t}"}),
    ("/api/admin/projects/AMQ/settings", {"purpose": "x{t}y"}),
])
def test_text_no_database_stores_is_a_400_and_nothing_stored(
        fuzz_site: tuple[Any, TenantAuth], path: str, body: dict[str, Any], text: str) -> None:
    from tests.security.conftest import table_checksums

    app, auth = fuzz_site
    app.config["PROPAGATE_EXCEPTIONS"] = False
    before = table_checksums(app.extensions["inflow.db"])
    filled = {k: v.replace("{t}", text) if isinstance(v, str) else v for k, v in body.items()}
    response = app.test_client().post(path, json=filled, headers=auth.context_headers(sub=VIEWER))
    assert response.status_code == 400, (response.status_code, response.data[:200])
    assert table_checksums(app.extensions["inflow.db"]) == before
    assert app.test_client().get("/jira/admin?projectKey=AMQ",  # still renders for the admin
                                 headers=auth.context_headers(sub=VIEWER)).status_code != 500


@pytest.mark.parametrize("url", ["/api/content/jira/%00/experts",
                                 "/api/content/confluence/123/experts?project=%00"])
def test_a_nul_in_the_address_is_a_400(fuzz_site: tuple[Any, TenantAuth], url: str) -> None:
    app, auth = fuzz_site
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert app.test_client().get(url, headers=auth.context_headers(sub=VIEWER)).status_code == 400


def test_an_answer_the_host_rejected_matches_the_documented_error_shape(
        fuzz_site: tuple[Any, TenantAuth], fake_host: FakeHost) -> None:
    """`host_rejected` carries what the site said (docs/reference.md): the error shape allows it."""
    app, auth = fuzz_site
    key = data.jira_dataset("apache-activemq")[0]["key"]
    fake_host.inject(f"/rest/api/3/issue/{key}/comment", 400)  # a comment Jira will not take
    response = app.test_client().post(
        "/api/questions", headers=auth.context_headers(sub=VIEWER),
        json={"source": "jira", "key": key, "expert_account_id": "chirino", "text": "Could you help?"})
    assert response.status_code == 422 and response.get_json()["host_messages"], response.get_json()
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    schema["/api/questions"]["POST"].validate_response(response)


def _documented(app: Any) -> dict[tuple[str, str], set[int]]:
    """Each operation's documented statuses, by (path, method)."""
    paths = app.test_client().get("/api/openapi.json").get_json()["paths"]
    return {(path, method.upper()): {int(status) for status in op["responses"]}
            for path, ops in paths.items() for method, op in ops.items()}


def test_every_route_documents_the_refusals_any_request_can_meet(
        fuzz_site: tuple[Any, TenantAuth]) -> None:
    """A NUL in the address (400) and a body over 1 MiB (413) are refused on every route."""
    app, auth = fuzz_site
    client = app.test_client()
    samples = {"{source}": "jira", "{key}": "AMQ-1", "{panel}": "experts", "{project_key}": "AMQ",
               "{question_id}": "1"}
    undocumented = []
    for (path, method), statuses in _documented(app).items():
        url = path
        for name, value in samples.items():
            url = url.replace(name, value)
        for query, body, status in (("x=%00", None, 400), ("projectKey=AMQ", "x" * ((1 << 20) + 1), 413)):
            response = client.open(f"{url}?{query}", method=method, data=body,
                                   headers=auth.context_headers(sub=VIEWER))
            assert response.status_code == status, (method, url, response.status_code)
            if status not in statuses:
                undocumented.append(f"{method} {path}: {status}")
    assert not undocumented


def test_a_preference_that_loses_a_race_answers_a_documented_409(
        fuzz_site: tuple[Any, TenantAuth], monkeypatch: pytest.MonkeyPatch) -> None:
    """Saving a new row another request just inserted is a 409 (docs/reference.md): described."""
    from plugin.services import settings

    app, auth = fuzz_site
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    body = {"opted_out": True}
    assert client.post("/api/me/preferences", json=body,
                       headers=auth.context_headers(sub=VIEWER)).status_code == 200
    monkeypatch.setattr(settings, "own_preference", lambda *_: None)  # as if not yet stored
    lost = client.post("/api/me/preferences", json=body, headers=auth.context_headers(sub=VIEWER))
    assert lost.status_code == 409
    assert 409 in _documented(app)[("/api/me/preferences", "POST")]
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    schema["/api/me/preferences"]["POST"].validate_response(lost)
