"""Every request the client sends carries a JWT the site accepts; the site really checks it."""
from __future__ import annotations

import time

import jwt as pyjwt
import pytest
import requests

from connect.host_client import HostClient, HostError
from connect.jwt import encode_token
from sandbox.site.server import FakeHost
from tests.hostclient.conftest import tenant_of

ADF = {"type": "doc", "version": 1,
       "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Seen this?"}]}]}


def test_library_and_raw_jira_calls_are_all_accepted(fake_host: FakeHost,
                                                     jira_client: HostClient) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=50)
    jira = jira_client.jira()
    page = jira.enhanced_jql("project = AMQ ORDER BY created ASC", fields=["summary", "comment"],
                             limit=5)
    assert [i["key"] for i in page["issues"]] and page["nextPageToken"]
    issue = jira.issue("AMQ-29")
    assert issue["fields"]["description"]["type"] == "doc"
    jira_client.request("POST", "/rest/api/3/issue/AMQ-29/comment", json={"body": ADF})
    jira_client.request("GET", "/rest/api/3/user/bulk",
                        params=[("accountId", "bguan"), ("accountId", "jstrachan")])
    assert fake_host.calls and all(c.status in (200, 201) and c.auth == "jwt"
                                   for c in fake_host.calls)


@pytest.mark.parametrize("params", [
    {"jql": 'project = AMQ AND updated >= "2007-01-01 00:00" ORDER BY updated ASC'},
    {"jql": "project = AMQ AND summary ~ \"Größe 🚀 naïve\"", "fields": "summary"},
    {"jql": "project in (AMQ, ZOOKEEPER)", "fields": ["summary", "status", "comment"]},
    {"jql": "project = AMQ", "fields": "summary,updated", "expand": "names",
     "weird key": "a+b&c=d/é", "empty": ""},
], ids=["spaces-and-quotes", "unicode", "repeated-keys", "reserved-characters"])
def test_query_strings_are_signed_exactly_as_sent(fake_host: FakeHost, jira_client: HostClient,
                                                  params: dict) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=20)
    response = jira_client.request("GET", "/rest/api/3/search/jql", params=params)
    assert response.status_code == 200
    assert fake_host.calls[-1].auth == "jwt" and fake_host.calls[-1].rejected is None


def test_confluence_calls_are_signed_relative_to_the_wiki_base_url(
        fake_host: FakeHost, confluence_client: HostClient) -> None:
    fake_host.load_confluence_dataset(limit=30)
    pages = confluence_client.request("GET", "/wiki/api/v2/pages",
                                      params={"body-format": "storage", "limit": 10}).json()
    following = confluence_client.request("GET", pages["_links"]["next"]).json()
    assert {p["id"] for p in pages["results"]}.isdisjoint(p["id"] for p in following["results"])
    confluence = confluence_client.confluence()
    assert confluence.get_page_by_id(pages["results"][0]["id"])["title"]
    search = confluence_client.request(
        "GET", "/rest/api/search", params={"cql": 'type = page and lastmodified > "2000-01-01"'})
    assert search.json()["totalSize"] == 30
    assert all(c.product == "confluence" and c.auth == "jwt" for c in fake_host.calls)


def _raw_get(host: FakeHost, path_and_query: str, token: str) -> requests.Response:
    return requests.get(host.url + path_and_query, headers={"Authorization": f"JWT {token}"},
                        timeout=5)


def _claims(qsh: str, issuer: str = "io.inflow.app") -> dict:
    now = int(time.time())
    return {"iss": issuer, "iat": now, "exp": now + 60, "qsh": qsh}


def test_site_rejects_a_token_signed_for_another_request(fake_host: FakeHost) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=5)
    from connect.jwt import qsh_for_url

    other = qsh_for_url("GET", f"{fake_host.url}/rest/api/3/issue/AMQ-30", fake_host.url)
    response = _raw_get(fake_host, "/rest/api/3/issue/AMQ-29",
                        encode_token(_claims(other), fake_host.secret))
    assert response.status_code == 401
    assert "qsh" in fake_host.calls[-1].rejected


def test_site_rejects_a_tampered_query_a_wrong_secret_or_issuer(fake_host: FakeHost) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=5)
    from connect.jwt import qsh_for_url

    signed = f"{fake_host.url}/rest/api/3/search/jql?jql=project%20%3D%20AMQ"
    qsh = qsh_for_url("GET", signed, fake_host.url)
    good = encode_token(_claims(qsh), fake_host.secret)
    assert _raw_get(fake_host, "/rest/api/3/search/jql?jql=project%20%3D%20AMQ",
                    good).status_code == 200
    assert _raw_get(fake_host, "/rest/api/3/search/jql?jql=project%20%3D%20ZOO",
                    good).status_code == 401
    assert _raw_get(fake_host, "/rest/api/3/search/jql?jql=project%20%3D%20AMQ",
                    encode_token(_claims(qsh), "f" * 64)).status_code == 401
    assert _raw_get(fake_host, "/rest/api/3/search/jql?jql=project%20%3D%20AMQ",
                    encode_token(_claims(qsh, "someone.else"), fake_host.secret)).status_code == 401
    assert _raw_get(fake_host, "/rest/api/3/search/jql?jql=project%20%3D%20AMQ",
                    encode_token(_claims("context-qsh"), fake_host.secret)).status_code == 401


def test_site_rejects_an_expired_token_and_a_missing_one(fake_host: FakeHost) -> None:
    from connect.jwt import qsh_for_url

    url = f"{fake_host.url}/rest/api/3/project/search"
    claims = _claims(qsh_for_url("GET", url, fake_host.url))
    claims.update(iat=claims["iat"] - 600, exp=claims["iat"] - 300)
    assert _raw_get(fake_host, "/rest/api/3/project/search",
                    pyjwt.encode(claims, fake_host.secret, algorithm="HS256")).status_code == 401
    assert requests.get(url, timeout=5).status_code == 401


def test_client_for_a_wrong_secret_gets_host_error_401(fake_host: FakeHost) -> None:
    tenant = tenant_of(fake_host)
    tenant.shared_secret = "e" * 64  # a secret from an earlier install
    with pytest.raises(HostError) as caught:
        HostClient.for_tenant(tenant, "io.inflow.app").request("GET", "/rest/api/3/project/search")
    assert caught.value.status == 401
