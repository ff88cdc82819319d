"""Cursor pagination over real data returns every item exactly once."""
from __future__ import annotations

from collections import Counter

from connect.host_client import HostClient
from sandbox.site.server import FakeHost


def test_search_jql_pages_through_hundreds_of_issues_each_once(fake_host: FakeHost,
                                                                jira_client: HostClient) -> None:
    loaded = fake_host.load_jira_dataset("apache-activemq", limit=400)
    jql = 'project = AMQ AND updated >= "2000-01-01 00:00" ORDER BY updated ASC'
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"jql": jql, "fields": "summary,updated,comment", "maxResults": 50}
        if token:
            params["nextPageToken"] = token
        body = jira_client.request("GET", "/rest/api/3/search/jql", params=params).json()
        seen += [i["key"] for i in body["issues"]]
        pages += 1
        if body["isLast"]:
            break
        token = body["nextPageToken"]
    assert pages == 8
    assert Counter(seen) == Counter(loaded)
    updated = [fake_host.store.issues[k]["fields"]["updated"] for k in seen]
    assert updated == sorted(updated)


def test_library_enhanced_jql_pagination_matches(fake_host: FakeHost,
                                                 jira_client: HostClient) -> None:
    loaded = fake_host.load_jira_dataset("apache-activemq", limit=250)
    jira = jira_client.jira()
    keys: list[str] = []
    token = None
    while True:
        page = jira.enhanced_jql("project = AMQ ORDER BY created ASC", fields=["summary"],
                                 nextPageToken=token, limit=100)
        keys += [i["key"] for i in page["issues"]]
        token = page.get("nextPageToken")
        if page["isLast"]:
            break
    assert sorted(keys) == sorted(loaded) and len(keys) == len(set(keys))


def test_issues_are_served_as_v3_with_adf_and_cloud_users(fake_host: FakeHost,
                                                          jira_client: HostClient) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=10)
    body = jira_client.request("GET", "/rest/api/3/search/jql", params={
        "jql": "key = AMQ-29", "fields": "description,comment,reporter"}).json()
    fields = body["issues"][0]["fields"]
    assert fields["description"]["type"] == "doc"
    comment = fields["comment"]["comments"][0]
    assert comment["body"]["type"] == "doc"
    assert set(comment["author"]) >= {"accountId", "displayName", "avatarUrls"}
    assert fields["reporter"]["accountId"] == "bguan"


def test_unbounded_jql_is_refused_like_the_real_endpoint(fake_host: FakeHost,
                                                         jira_client: HostClient) -> None:
    import pytest

    from connect.host_client import HostError

    with pytest.raises(HostError) as caught:
        jira_client.request("GET", "/rest/api/3/search/jql", params={"jql": "ORDER BY created"})
    assert caught.value.status == 400


def test_confluence_cursor_pagination_returns_each_page_once(
        fake_host: FakeHost, confluence_client: HostClient) -> None:
    loaded = fake_host.load_confluence_dataset(limit=120)
    seen: list[str] = []
    path: str | None = "/wiki/api/v2/pages"
    params: dict | None = {"body-format": "storage", "limit": 25}
    while path:
        body = confluence_client.request("GET", path, params=params).json()
        seen += [p["id"] for p in body["results"]]
        assert all(p["body"]["storage"]["representation"] == "storage" for p in body["results"])
        path, params = body["_links"].get("next"), None
    assert Counter(seen) == Counter(loaded)


def test_a_continued_search_reads_its_first_pages_results(fake_host: FakeHost,
                                                            jira_client: HostClient) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=120)
    jql = "project = AMQ ORDER BY created ASC"

    def page(token: str | None = None) -> dict:
        params = {"jql": jql, "fields": "summary", "maxResults": 100}
        return jira_client.request("GET", "/rest/api/3/search/jql",
                                   params={**params, "nextPageToken": token} if token else params).json()

    first = page()
    runs = len(fake_host.jql_cursors)
    rest = page(first["nextPageToken"])
    assert len(fake_host.jql_cursors) == runs  # the query did not run again
    assert len(first["issues"]) + len(rest["issues"]) == 120 and rest["isLast"]
    fake_host.jql_cursors.clear()  # as after the site restarted: the token still continues
    assert [i["key"] for i in page(first["nextPageToken"])["issues"]] == [i["key"] for i in rest["issues"]]
