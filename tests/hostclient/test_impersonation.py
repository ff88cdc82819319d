"""Acting as a user: OAuth 2.0 JWT bearer grant, a cached token, the user's own permissions."""
from __future__ import annotations

import jwt as pyjwt
import pytest

from connect.adf import text_to_adf
from connect.host_client import HostClient, HostError
from sandbox.site.server import FakeHost
from tests.hostclient.conftest import tenant_of


def test_comment_posted_as_user_is_recorded_as_that_user(fake_host: FakeHost,
                                                         jira_client: HostClient) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=10)
    as_brian = jira_client.as_user("bguan")
    body = {"body": text_to_adf("Have a look at AMQ-42.\n\nIt looks the same.")}
    response = as_brian.request("POST", "/rest/api/3/issue/AMQ-29/comment", json=body)
    assert response.status_code == 201
    posted = fake_host.comments("AMQ-29")
    assert [c["author"]["accountId"] for c in posted] == ["bguan"]
    assert posted[0]["body"]["content"][1]["content"][0]["text"] == "It looks the same."
    call = fake_host.calls_to("/rest/api/3/issue/AMQ-29/comment")[-1]
    assert (call.auth, call.account_id) == ("bearer", "bguan")


def test_app_comment_is_recorded_as_the_app_user(fake_host: FakeHost,
                                                 jira_client: HostClient) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=10)
    jira_client.request("POST", "/rest/api/3/issue/AMQ-29/comment",
                        json={"body": text_to_adf("From the app")})
    assert fake_host.comments("AMQ-29")[0]["author"]["accountId"] == fake_host.app_account_id


def test_user_token_is_fetched_once_and_reused(fake_host: FakeHost,
                                               jira_client: HostClient) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=10)
    user = jira_client.as_user("bguan")
    for _ in range(3):
        user.request("GET", "/rest/api/3/mypermissions", params={"permissions": "BROWSE_PROJECTS"})
    jira_client.as_user("bguan").request("GET", "/rest/api/3/issue/AMQ-29")
    grants = fake_host.calls_to("/oauth2/token")
    assert len(grants) == 1 and grants[0].status == 200
    assert all(c.account_id == "bguan" for c in fake_host.calls if c.auth == "bearer")


def test_assertion_names_client_user_site_and_auth_server(fake_host: FakeHost) -> None:
    from connect.impersonation import assertion

    tenant = tenant_of(fake_host)
    signed = assertion(tenant.oauth_client_id, tenant.shared_secret, tenant.base_url, "bguan",
                       fake_host.url)
    claims = pyjwt.decode(signed, tenant.shared_secret, algorithms=["HS256"],
                          audience=fake_host.url)
    assert claims["iss"] == f"urn:atlassian:connect:clientid:{tenant.oauth_client_id}"
    assert claims["sub"] == "urn:atlassian:connect:useraccountid:bguan"
    assert claims["tnt"] == fake_host.url and claims["exp"] - claims["iat"] == 60


def test_impersonated_user_sees_only_what_they_may(fake_host: FakeHost,
                                                   jira_client: HostClient) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=10)
    fake_host.deny("bguan", "AMQ-29")
    with pytest.raises(HostError) as caught:
        jira_client.as_user("bguan").request("GET", "/rest/api/3/issue/AMQ-29")
    assert caught.value.status == 404
    assert jira_client.request("GET", "/rest/api/3/issue/AMQ-29").status_code == 200
    mine = jira_client.as_user("bguan").get_json(
        "/rest/api/3/mypermissions", params={"permissions": "BROWSE_PROJECTS",
                                             "issueKey": "AMQ-30"})
    assert mine["permissions"]["BROWSE_PROJECTS"]["havePermission"] is True


def test_bulk_permission_check_follows_deny_and_project_admin(
        fake_host: FakeHost, jira_client: HostClient) -> None:
    fake_host.load_jira_dataset("apache-activemq", limit=10)
    fake_host.deny("bguan", "AMQ-29")
    fake_host.set_project_admin("jstrachan", "AMQ")
    issue_ids = [int(fake_host.store.issues[k]["id"]) for k in ("AMQ-29", "AMQ-30")]
    project_id = int(fake_host.store.projects["AMQ"]["id"])

    def check(account: str) -> dict:
        body = {"accountId": account, "projectPermissions": [
            {"permissions": ["BROWSE_PROJECTS", "ADMINISTER_PROJECTS"], "issues": issue_ids,
             "projects": [project_id]}]}
        grants = jira_client.request("POST", "/rest/api/3/permissions/check", json=body).json()
        return {g["permission"]: g for g in grants["projectPermissions"]}

    brian, james = check("bguan"), check("jstrachan")
    assert brian["BROWSE_PROJECTS"]["issues"] == [issue_ids[1]]
    assert brian["ADMINISTER_PROJECTS"]["projects"] == []
    assert james["ADMINISTER_PROJECTS"]["projects"] == [project_id]
    assert james["BROWSE_PROJECTS"]["issues"] == issue_ids


def test_forged_bearer_token_is_rejected(fake_host: FakeHost) -> None:
    import requests

    response = requests.get(f"{fake_host.url}/rest/api/3/issue/AMQ-29",
                            headers={"Authorization": "Bearer made-up"}, timeout=5)
    assert response.status_code == 401


def test_tenant_without_oauth_client_cannot_impersonate(fake_host: FakeHost) -> None:
    tenant = tenant_of(fake_host)
    tenant.oauth_client_id = None
    with pytest.raises(HostError):
        HostClient.for_tenant(tenant, "io.inflow.app").as_user("bguan")
