"""Rovo actions through Forge Remote: the panels' answers, filtered as the user who asks."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from connect.models import Tenant
from sandbox.site.server import FakeHost
from tests.forge.fit import APP_ID, JWKSServer, SigningKey, fit_claims, sign
from tests.panels.conftest import Site, install_wiki

ACTIONS = ("experts", "similar", "contributors")
VIEWER = "aco"


@pytest.fixture(scope="module")
def forge_key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def rovo(site: Site, forge_key: SigningKey) -> Iterator[Rovo]:
    server = JWKSServer([forge_key]).start()
    site.app.config.update(INFLOW_FORGE_JWKS_URL=server.url, INFLOW_FORGE_APP_ID=APP_ID)
    yield Rovo(site, forge_key)
    server.stop()


class Rovo:
    """Signs action calls as Forge does for the site's Jira (or Confluence) installation."""

    def __init__(self, site: Site, key: SigningKey) -> None:
        self.site, self.key, self.product = site, key, "jira"
        self.installation = {"jira": "ari:cloud:ecosystem::installation/jira-1",
                             "confluence": "ari:cloud:ecosystem::installation/wiki-1"}
        self.system = {p: site.host.issue_forge_token(p) for p in ("jira", "confluence")}
        with site.db.session() as session:  # the site's Connect tenants move to Forge
            for tenant in session.scalars(select(Tenant)):
                tenant.cloud_id = site.host.cloud_id

    def token(self, principal: str | None = VIEWER, **claims: Any) -> str:
        return sign(fit_claims(self.installation[self.product], self.site.host.cloud_id,
                               product=self.product, principal=principal, ui=False,
                               api_host=self.site.host.url, **claims), self.key)

    def headers(self, principal: str | None = VIEWER, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(principal, **claims)}",
                "x-forge-oauth-system": f"Bearer {self.system[self.product]}"}

    def call(self, action: str, payload: dict[str, Any], principal: str | None = VIEWER,
             **claims: Any) -> Any:
        return self.site.client.post(f"/forge/rovo/{action}", json=payload,
                                     headers=self.headers(principal, **claims))


def issue_context(key: str, cloud_id: str = "c") -> dict[str, Any]:
    return {"context": {"cloudId": cloud_id, "moduleKey": "inflow-find-experts",
                        "jira": {"url": f"https://x.atlassian.net/browse/{key}",
                                 "resourceType": "issue", "issueKey": key, "issueId": 1,
                                 "projectKey": key.split("-")[0]}}}


def test_find_experts_answers_short_and_structured_from_the_issue_in_context(rovo: Rovo) -> None:
    key = rovo.site.keys[-1]
    response = rovo.call("experts", issue_context(key))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["item"]["key"] == key and 0 < len(body["experts"]) <= 5
    for person in body["experts"]:
        assert set(person) == {"name", "accountId", "why", "evidence"}
        assert len(person["evidence"]) <= 3
        assert all(set(e) == {"key", "title", "url", "role"} for e in person["evidence"])
    assert VIEWER not in [p["accountId"] for p in body["experts"]]


def test_find_similar_omits_a_candidate_the_viewer_may_not_see(rovo: Rovo) -> None:
    key = rovo.site.keys[-1]
    shown = rovo.call("similar", issue_context(key), principal="chirino").get_json()["similar"]
    assert shown and {"key", "title", "url", "status", "why"} == set(shown[0])
    hidden = shown[0]["key"]
    rovo.site.host.deny("rajdavies", hidden)
    answer = rovo.call("similar", issue_context(key), principal="rajdavies").get_json()
    assert hidden not in [s["key"] for s in answer["similar"]]
    for person in rovo.call("experts", issue_context(key), principal="rajdavies"
                            ).get_json()["experts"]:
        assert hidden not in [e["key"] for e in person["evidence"]]
    # The permission was asked of the site for rajdavies, with the app's token.
    checks = rovo.site.host.calls_to("/rest/api/3/permissions/check")
    assert "rajdavies" in {(c.json or {}).get("accountId") for c in checks}


def test_inputs_the_agent_filled_in_never_decide_who_asks(rovo: Rovo) -> None:
    key = rovo.site.keys[-1]
    hidden = rovo.call("similar", issue_context(key), principal="chirino").get_json()["similar"]
    rovo.site.host.deny("rajdavies", hidden[0]["key"])
    forged = {**issue_context(key, cloud_id="another-site"), "accountId": "chirino",
              "principal": "chirino", "userAccountId": "chirino", "issueKey": key}
    answer = rovo.call("similar", forged, principal="rajdavies")
    assert answer.status_code == 200
    assert hidden[0]["key"] not in [s["key"] for s in answer.get_json()["similar"]]


def test_an_item_the_viewer_may_not_see_gives_nothing_about_it(rovo: Rovo) -> None:
    key = rovo.site.keys[-1]
    rovo.site.host.deny("mallory", key)
    for action in ACTIONS:
        body = rovo.call(action, {"issueKey": key}, principal="mallory").get_json()
        assert body["item"] is None and body[action] == [] and body["message"], action


def test_who_contributed_lists_people_with_roles_and_kudos(rovo: Rovo) -> None:
    key = rovo.site.keys[-1]
    body = rovo.call("contributors", {"issueKey": key.lower()}).get_json()
    assert body["item"]["key"] == key and body["contributors"]
    assert all(set(c) == {"name", "accountId", "roles", "kudos"} for c in body["contributors"])


def test_a_well_formed_input_wins_and_a_bad_one_falls_back_to_the_context(rovo: Rovo) -> None:
    first, last = rovo.site.keys[0], rovo.site.keys[-1]
    assert rovo.call("similar", {**issue_context(last), "issueKey": first}
                     ).get_json()["item"]["key"] == first
    assert rovo.call("similar", {**issue_context(last), "issueKey": "../../etc"}
                     ).get_json()["item"]["key"] == last


@pytest.mark.parametrize("payload", [{}, {"issueKey": "not a key"}, {"issueKey": ["AMQ-1"]},
                                     {"context": {"jira": {"issueKey": {"x": 1}}}}])
def test_no_usable_issue_is_a_422_with_the_field(rovo: Rovo, payload: dict[str, Any]) -> None:
    response = rovo.call("experts", payload)
    assert response.status_code == 422 and response.get_json()["errors"]["issueKey"]


def test_a_body_that_is_not_a_json_object_is_a_400(rovo: Rovo) -> None:
    for data in (b"{nope", b"[1, 2]"):
        response = rovo.site.client.post("/forge/rovo/experts", data=data, headers={
            **rovo.headers(), "Content-Type": "application/json"})
        assert response.status_code == 400 and response.is_json


@pytest.mark.parametrize("action", ACTIONS)
def test_a_missing_or_forged_token_gets_a_401_json(rovo: Rovo, action: str) -> None:
    key = rovo.site.keys[-1]
    forged = sign(fit_claims(rovo.installation["jira"], rovo.site.host.cloud_id), SigningKey(
        kid=rovo.key.kid))
    for headers in ({}, {"Authorization": f"Bearer {forged}"},
                    {"Authorization": "Bearer not-a-token"},
                    rovo.site.tenant.context_headers(sub=VIEWER)):  # a Connect JWT is not a FIT
        response = rovo.site.client.post(f"/forge/rovo/{action}", json=issue_context(key),
                                         headers=headers)
        assert response.status_code == 401, (headers, response.get_data(True))
        assert response.get_json()["error"] == "unauthorized"


def test_a_call_without_a_user_is_refused(rovo: Rovo) -> None:
    response = rovo.call("experts", issue_context(rovo.site.keys[-1]), principal=None)
    assert response.status_code == 403 and response.get_json()["error"] == "refused"


def test_confluence_pages_are_read_from_the_content_in_context(site: Site, rovo: Rovo) -> None:
    install_wiki(site)
    rovo.__init__(site, rovo.key)  # the Confluence tenant moves to Forge too
    rovo.product = "confluence"
    page = site.keys[0]
    payload = {"context": {"cloudId": "c", "confluence": {
        "resourceType": "page", "contentId": page, "spaceKey": "TSC"}}}
    body = rovo.call("contributors", payload).get_json()
    assert body["item"]["key"] == page and body["contributors"]
    assert rovo.call("similar", {"pageId": int(page)}).get_json()["item"]["key"] == page


def test_no_token_reaches_the_logs(rovo: Rovo, caplog: pytest.LogCaptureFixture,
                                   fake_host: FakeHost) -> None:
    caplog.set_level(logging.DEBUG)
    key = rovo.site.keys[-1]
    user_token = fake_host.issue_forge_token("jira", VIEWER)
    fit = rovo.token()
    headers = {"Authorization": f"Bearer {fit}", "x-forge-oauth-system":
               f"Bearer {rovo.system['jira']}", "x-forge-oauth-user": f"Bearer {user_token}"}
    client = rovo.site.client
    assert client.post("/forge/rovo/experts", json=issue_context(key), headers=headers
                       ).status_code == 200
    assert client.get(f"/api/content/jira/{key}/reuse", headers=headers).status_code == 200
    fake_host.inject("/rest/api/3/issueLink", 500, times=10)  # a failing host call is logged
    assert client.post("/api/links", json={"key": key, "target_key": rovo.site.keys[0],
                                           "link_type": "relates"}, headers=headers
                       ).status_code == 502
    expired = rovo.token(exp=1)
    assert client.post("/forge/rovo/experts", json={}, headers={
        "Authorization": f"Bearer {expired}"}).status_code == 401
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert caplog.records  # the flow did log (requests, host failure)
    for secret in (fit, expired, rovo.system["jira"], user_token):
        assert secret not in logged and secret[-24:] not in logged
