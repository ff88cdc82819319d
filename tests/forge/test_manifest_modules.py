"""The manifest's UI modules: each product reaches the personal page, validated as Forge does."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from connect.forge_routes import render_manifest
from tests.conftest import BASE_URL
from tests.forge.build import FORGE, RESOURCES
from tests.forge.fit import APP_ID
from tests.forge.test_manifest import validate

PAGE = "confluence:globalPage"


def manifest() -> dict[str, Any]:
    return yaml.safe_load(render_manifest(BASE_URL, APP_ID))


def test_confluence_users_reach_the_personal_page_jira_users_reach() -> None:
    """A global page (Apps in Confluence's navigation: every user), serving the Jira page's UI."""
    data = manifest()
    modules = data["modules"]
    [page] = modules[PAGE]
    [jira] = modules["jira:personalSettingsPage"]
    assert page["resource"] == jira["resource"] == "personal-settings"
    resources = {r["key"]: r["path"] for r in data["resources"]}
    assert resources[page["resource"]] == "static/personal-settings/build"
    assert page["resource"] in RESOURCES and (FORGE / "static" / page["resource"] / "main.js").exists()
    # Its remote calls carry the user (the page is about them): the endpoint the other UI uses.
    assert page["resolver"] == jira["resolver"] == {"endpoint": "inflow-ui"}
    [endpoint] = [e for e in modules["endpoint"] if e["key"] == "inflow-ui"]
    assert endpoint["auth"]["appUserToken"]["enabled"] is True
    assert page["title"] and re.fullmatch(r"[a-z0-9-]+", page["route"])
    assert page["icon"] == "resource:personal-settings;icon.svg"
    assert "inflow-personal-page" not in {m["key"] for kind, items in modules.items()
                                          if kind != PAGE for m in items}


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Ours, and the global page without its route or with a resource nobody declared."""
    ours = render_manifest("https://inflow.example.com", APP_ID)
    module = ours[ours.index(f"  {PAGE}:"):]
    module = module[:module.index("\n  confluence:contentBylineItem:")]
    variants = {"no_route": re.sub(r"\n +route: [^\n]+", "", module),
                "no_resource": module.replace("resource: personal-settings", "resource: nowhere")}
    assert all(v != module for v in variants.values())
    return validate({"ours": ours, **{k: ours.replace(module, v) for k, v in variants.items()}},
                    Path(tmp_path_factory.mktemp("forge-modules")))


def test_the_personal_page_module_passes_atlassians_validation(validated: dict[str, dict]) -> None:
    assert all(r["success"] for r in validated["ours"].values()), validated["ours"]


@pytest.mark.parametrize("label", ["no_route", "no_resource"])
def test_the_validator_checks_the_global_page(validated: dict[str, dict], label: str) -> None:
    assert not validated[label]["full"]["success"], validated[label]
