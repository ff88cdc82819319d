"""The Forge manifest: rendered from config, and valid by Atlassian's own validator."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from flask import Flask

from connect.forge_routes import PLACEHOLDER_APP_ID, render_manifest
from tests.conftest import BASE_URL, ROOT
from tests.forge.build import RESOURCES, build_ui, node_or_skip
from tests.forge.fit import APP_ID

NODE_MODULES = ROOT / "tests" / "node" / "node_modules"


def validate(manifests: dict[str, str], tmp_path: Path) -> dict[str, dict]:
    """Atlassian's @forge/manifest results for each manifest, each beside the built resources."""
    node = node_or_skip()
    if not (NODE_MODULES / "@forge" / "manifest").exists():
        pytest.fail("@forge/manifest is not installed: run `make node`")
    built = build_ui(tmp_path / "built")
    files = {}
    for label, text in manifests.items():
        for name in RESOURCES:
            # Copied, not linked: the validator wants real directories.
            shutil.copytree(built / name, tmp_path / label / "static" / name / "build")
        files[label] = tmp_path / label / "manifest.yml"
        files[label].write_text(text)
    run = subprocess.run([node, str(Path(__file__).with_name("validate_manifest.js")),
                          *map(str, files.values())], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "NODE_PATH": str(NODE_MODULES)})
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    return {label: results[str(path)] for label, path in files.items()}


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Ours, and one with an endpoint pointing at an undeclared remote (one node run: it is slow)."""
    ours = render_manifest("https://inflow.example.com", APP_ID)
    broken = ours.replace("remote: inflow", "remote: nowhere")
    bad_verb = ours.replace("actionVerb: GET", "actionVerb: FETCH", 1)
    no_endpoint = ours.replace("endpoint: inflow-rovo-similar", "endpoint: inflow-nowhere")
    return validate({"ours": ours, "broken": broken, "bad_verb": bad_verb,
                     "no_endpoint": no_endpoint}, tmp_path_factory.mktemp("forge-manifest"))


def test_the_served_manifest_points_the_remote_at_our_base_url(forge_app: Flask) -> None:
    response = forge_app.test_client().get("/forge/manifest.yml")
    assert response.status_code == 200 and response.mimetype == "text/yaml"
    text = response.get_data(as_text=True)
    assert f'baseUrl: "{BASE_URL}"' in text and f'id: "{APP_ID}"' in text
    for needle in ("jira:issuePanel", "jira:projectSettingsPage", "jira:personalSettingsPage",
                   "macro:", "confluence:contentBylineItem", "avi:jira:updated:issue",
                   "avi:confluence:created:page", "avi:forge:installed:app", "- compute", "- storage",
                   "scheduledTrigger:", "interval: hour", "path: /forge/scheduled",
                   "rovo:agent:", "name: Inflow", "actionVerb: GET", "path: /forge/rovo/experts",
                   "path: /forge/rovo/similar", "path: /forge/rovo/contributors"):
        assert needle in text, needle


def test_the_manifest_passes_atlassians_validation(validated: dict[str, dict]) -> None:
    assert all(r["success"] for r in validated["ours"].values()), validated["ours"]


def test_the_validator_catches_a_broken_manifest(validated: dict[str, dict]) -> None:
    assert not validated["broken"]["full"]["success"]


@pytest.mark.parametrize("label", ["bad_verb", "no_endpoint"])
def test_the_validator_checks_the_rovo_actions_too(validated: dict[str, dict], label: str) -> None:
    assert not validated[label]["full"]["success"], validated[label]


def test_unregistered_apps_get_a_placeholder_id_and_bad_config_is_refused() -> None:
    assert f'id: "{PLACEHOLDER_APP_ID}"' in render_manifest("https://inflow.example.com")
    with pytest.raises(ValueError):
        render_manifest("inflow.example.com", APP_ID)
    with pytest.raises(ValueError):
        render_manifest("https://inflow.example.com", 'x"\nmodules: {}')


def test_endpoint_and_remote_keys_are_within_atlassians_23_characters() -> None:
    """Forge documents at most 23 characters for these keys; @forge/manifest does not check it."""
    manifest = yaml.safe_load(render_manifest(BASE_URL))
    keys = [e["key"] for e in manifest["modules"]["endpoint"]] + [r["key"] for r in manifest["remotes"]]
    assert [key for key in keys if len(key) > 23] == []
    actions = {a["endpoint"] for a in manifest["modules"]["action"]}
    assert actions <= {e["key"] for e in manifest["modules"]["endpoint"]}


def test_the_trigger_only_routes_know_every_trigger_of_the_manifest() -> None:
    import yaml

    from connect.forge import TRIGGER_MODULES

    modules = yaml.safe_load(render_manifest(BASE_URL))["modules"]
    triggers = modules["trigger"] + modules["scheduledTrigger"]
    routes = {e["key"]: e.get("route", {}).get("path") for e in modules["endpoint"]}
    # Every trigger, and the endpoint it calls, is let through; no UI or Rovo endpoint is.
    assert {t["key"] for t in triggers} | {t["endpoint"] for t in triggers} == TRIGGER_MODULES
    assert {routes[t["endpoint"]] for t in triggers} == {"/forge/events", "/forge/lifecycle", "/forge/scheduled"}


def test_every_product_event_the_manifest_subscribes_to_is_understood() -> None:
    """An event Forge delivers that /forge/events cannot map would be refused (400) and lost."""
    import yaml

    from connect.forge_events import CONFLUENCE_EVENTS, JIRA_EVENTS

    modules = yaml.safe_load(render_manifest(BASE_URL))["modules"]
    subscribed = {event for trigger in modules["trigger"] for event in trigger["events"]
                  if event.startswith(("avi:jira:", "avi:confluence:"))}
    assert subscribed and subscribed == set(JIRA_EVENTS) | set(CONFLUENCE_EVENTS)


# The granular scope each Confluence v2 collection is documented with (v2 lists no classic ones).
V2_SCOPES = {"pages": "read:page:confluence", "blogposts": "read:blogpost:confluence",
             "spaces": "read:space:confluence", "footer-comments": "read:comment:confluence"}


def test_every_confluence_v2_collection_the_code_calls_has_its_granular_scope() -> None:
    scopes = set(yaml.safe_load(render_manifest("https://inflow.example.com", APP_ID))["permissions"]["scopes"])
    called = set()
    for path in (ROOT / "plugin").rglob("*.py"):
        text = path.read_text()
        called |= set(re.findall(r"/wiki/api/v2/([a-z-]+)", text))
        if "CONFLUENCE_COLLECTIONS[" in text and "/wiki/api/v2/" in text:
            called |= {"pages", "blogposts"}
    assert called >= {"pages", "spaces", "footer-comments"}
    assert {V2_SCOPES[c] for c in called if c in V2_SCOPES} <= scopes
    assert "write:comment:confluence" in scopes  # questions post footer comments


# The classic scope Atlassian's REST reference gives each Jira v3 and Confluence v1 operation the
# code calls ({} stands for a path parameter); an operation without one needs no scope.
V1_V3_SCOPES = {
    "/rest/api/3/groups/picker": "read:jira-user", "/rest/api/3/issue/bulkfetch": "read:jira-work",
    "/rest/api/3/issue/{}": "read:jira-work", "/rest/api/3/issue/{}/comment": "write:jira-work",
    "/rest/api/3/issue/{}/notify": "write:jira-work", "/rest/api/3/issueLink": "write:jira-work",
    "/rest/api/3/permissions/check": None, "/rest/api/3/project/search": "read:jira-work",
    "/rest/api/3/project/{}": "read:jira-work", "/rest/api/3/search/approximate-count": "read:jira-work",
    "/rest/api/3/serverInfo": None, "/rest/api/3/user": "read:jira-user",
    "/rest/api/3/user/bulk": "read:jira-user", "/rest/api/3/user/groups": "read:jira-user",
    "/wiki/rest/api/content/search": "search:confluence", "/wiki/rest/api/search": "search:confluence",
    "/wiki/rest/api/content/{}/permission/check": "read:confluence-content.permission",
    "/wiki/rest/api/user": "read:confluence-user", "/wiki/rest/api/user/bulk": "read:confluence-user",
    "/wiki/rest/api/user/memberof": "read:confluence-user",
}
# Called, but not with a scope Inflow asks for, each for its reason.
NOT_GRANTED = {
    "/rest/api/3/webhook/failed": "Connect apps only; reconciliation skips it with a Forge client",
}


def test_every_v1_and_v3_operation_the_code_calls_has_its_documented_scope() -> None:
    scopes = set(yaml.safe_load(render_manifest("https://inflow.example.com", APP_ID))["permissions"]["scopes"])
    called = set()
    for package in ("connect", "plugin", "jobs"):
        for path in (ROOT / package).rglob("*.py"):
            found = re.findall(r"""["'](/(?:wiki/rest/api|rest/api/3)/[^"'?\s]*)["']""", path.read_text())
            called |= {re.sub(r"\{[^}]*\}", "{}", p) for p in found}
    assert "/wiki/rest/api/content/{}/permission/check" in called
    assert called <= set(V1_V3_SCOPES) | set(NOT_GRANTED), called - set(V1_V3_SCOPES) - set(NOT_GRANTED)
    missing = {p: V1_V3_SCOPES[p] for p in called & set(V1_V3_SCOPES)
               if V1_V3_SCOPES[p] and V1_V3_SCOPES[p] not in scopes}
    assert not missing, missing
