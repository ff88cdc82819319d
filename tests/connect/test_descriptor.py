"""The served descriptors: valid, per product, and consistent with the module URL contract."""
from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from flask.testing import FlaskClient

from connect.descriptor import MODULE_URLS, SCOPE_REASONS, TEMPLATE_PATH, module_urls
from sandbox import datasets
from tests.conftest import BASE_URL

JIRA_ONLY = {"webPanels", "jiraIssueContents", "jiraProjectAdminTabPanels"}
CONFLUENCE_ONLY = {"dynamicContentMacros", "staticContentMacros", "contentBylineItems"}
JIRA_EVENTS = {"jira:issue_created", "jira:issue_updated", "jira:issue_deleted",
               "comment_created", "comment_updated", "comment_deleted",
               "issuelink_created", "issuelink_deleted"}
CONFLUENCE_EVENTS = {f"{kind}_{verb}" for kind in ("page", "blog")
                     for verb in ("created", "updated", "removed", "trashed", "restored")} | {
    "comment_created", "comment_updated", "comment_removed", "label_added", "label_removed"}


def served(client: FlaskClient, product: str) -> dict[str, Any]:
    response = client.get(f"/{product}/atlassian-connect.json")
    assert response.status_code == 200
    return response.get_json()


@pytest.mark.parametrize("product", ["jira", "confluence"])
def test_descriptor_carries_base_url_key_jwt_lifecycle_and_api_migrations(
        client: FlaskClient, product: str) -> None:
    descriptor = served(client, product)
    assert descriptor["baseUrl"] == BASE_URL
    assert descriptor["key"] == client.application.config["INFLOW_APP_KEY"]
    assert descriptor["authentication"] == {"type": "jwt"}
    assert descriptor["lifecycle"] == {"installed": "/installed", "uninstalled": "/uninstalled",
                                       "enabled": "/enabled", "disabled": "/disabled"}
    assert descriptor["apiMigrations"] == {"signed-install": True, "context-qsh": True,
                                           "gdpr": True}
    assert "{{" not in json.dumps(descriptor)


@pytest.mark.parametrize("product", ["jira", "confluence"])
def test_descriptor_asks_only_for_justified_least_privilege_scopes(
        client: FlaskClient, product: str) -> None:
    scopes = served(client, product)["scopes"]
    assert sorted(scopes) == ["ACT_AS_USER", "READ", "WRITE"]
    assert set(scopes) == set(SCOPE_REASONS)


@pytest.mark.parametrize("product", ["jira", "confluence"])
def test_served_descriptor_validates_against_the_connect_schema(
        client: FlaskClient, product: str) -> None:
    # The schema is Jira's; Confluence modules pass as additional properties of `modules`,
    # so the shared fields (key, baseUrl, lifecycle, scopes, apiMigrations, webhooks) are checked.
    jsonschema.Draft4Validator(datasets.descriptor_schema()).validate(served(client, product))


def test_jira_descriptor_has_only_jira_modules(client: FlaskClient) -> None:
    modules = served(client, "jira")["modules"]
    assert not set(modules) & CONFLUENCE_ONLY
    locations = {panel["location"] for panel in modules["webPanels"]}
    assert locations == {"atl.jira.view.issue.right.context"}
    assert {hook["event"] for hook in modules["webhooks"]} == JIRA_EVENTS


def test_confluence_descriptor_has_only_confluence_modules(client: FlaskClient) -> None:
    modules = served(client, "confluence")["modules"]
    assert not set(modules) & JIRA_ONLY
    assert {hook["event"] for hook in modules["webhooks"]} == CONFLUENCE_EVENTS
    for macro in modules["dynamicContentMacros"]:
        assert macro["renderModes"]["default"]["url"].startswith("/confluence/macros/export?")
        for parameter in macro.get("parameters", []):
            assert "{" + parameter["identifier"] + "}" in macro["url"]


def test_webhook_urls_route_to_the_product_and_event(client: FlaskClient) -> None:
    for product in ("jira", "confluence"):
        for hook in served(client, product)["modules"]["webhooks"]:
            assert hook["url"] == f"/webhooks/{product}/{hook['event'].removeprefix('jira:')}"


@pytest.mark.parametrize("product", ["jira", "confluence"])
def test_module_urls_constant_documents_every_descriptor_url(
        client: FlaskClient, product: str) -> None:
    assert module_urls(served(client, product)) == MODULE_URLS[product]


def test_template_is_json_with_placeholders_for_base_url_and_key() -> None:
    template = json.loads(TEMPLATE_PATH.read_text())
    assert template["baseUrl"] == "{{baseUrl}}" and template["key"] == "{{appKey}}"
    assert set(template["productModules"]) == {"jira", "confluence"}


def test_unknown_product_descriptor_is_404(client: FlaskClient) -> None:
    assert client.get("/bitbucket/atlassian-connect.json").status_code == 404
