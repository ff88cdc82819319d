"""The Connect app descriptors: one template, one served descriptor per product."""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, abort, current_app, jsonify

bp = Blueprint("descriptor", __name__)

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "atlassian-connect.json"
PRODUCTS = ("jira", "confluence")

# Why each scope (least privilege: no DELETE, no ADMIN, no PROJECT_ADMIN/SPACE_ADMIN):
SCOPE_REASONS: dict[str, str] = {
    "READ": "read issues, comments, links, pages and people to index work and find experts",
    "WRITE": "post the asker's question as a comment and create duplicate/relates issue links",
    "ACT_AS_USER": "run permission-sensitive reads and user-authored writes as the viewer, "
                   "so nobody sees or does more through Inflow than they could in the product",
}

# The module URLs in atlassian-connect.json: the contract the panels engineer implements.
# Hosts load every iframe URL with `?jwt=` carrying a qsh JWT for that exact URL (use
# `require_jwt()`); calls the iframe makes back with AP.context.getToken() carry
# `qsh: context-qsh` (use `require_jwt(context=True)`). Macro export URLs are called by
# Confluence server-side with `Authorization: JWT` (qsh) and must return storage-format XHTML.
MODULE_URLS: dict[str, dict[str, str]] = {
    "jira": {
        # webPanels at atl.jira.view.issue.right.context (issue view side panels)
        "inflow-experts-panel":
            "/jira/panels/experts?issueKey={issue.key}&projectKey={project.key}",
        "inflow-reuse-panel":
            "/jira/panels/reuse?issueKey={issue.key}&projectKey={project.key}",
        "inflow-contributors-panel":
            "/jira/panels/contributors?issueKey={issue.key}&projectKey={project.key}",
        # jiraProjectAdminTabPanels: per-project settings and dashboard
        "inflow-project-admin": "/jira/admin?projectKey={project.key}",
        # generalPages: the viewer's own page (preferences, export, erase)
        "inflow-me-jira": "/jira/me",
    },
    "confluence": {
        # dynamicContentMacros (iframes); `topic`, `scope`, `period` are macro parameters
        "inflow-ask-an-expert": "/confluence/macros/experts?pageId={page.id}"
                                "&spaceKey={space.key}&topic={topic}&outputType={output.type}",
        "inflow-related-work": "/confluence/macros/related?pageId={page.id}"
                               "&spaceKey={space.key}&outputType={output.type}",
        "inflow-contributors-kudos": "/confluence/macros/contributors?pageId={page.id}"
                                     "&spaceKey={space.key}&outputType={output.type}",
        "inflow-recognition-board": "/confluence/macros/recognition?pageId={page.id}"
                                    "&spaceKey={space.key}&scope={scope}&period={period}"
                                    "&outputType={output.type}",
        # renderModes.default of each macro: static storage-format XHTML for PDF/Word/email
        "inflow-ask-an-expert.export": "/confluence/macros/export?macro=experts"
                                       "&pageId={page.id}&spaceKey={space.key}&topic={topic}",
        "inflow-related-work.export": "/confluence/macros/export?macro=related"
                                      "&pageId={page.id}&spaceKey={space.key}",
        "inflow-contributors-kudos.export": "/confluence/macros/export?macro=contributors"
                                            "&pageId={page.id}&spaceKey={space.key}",
        "inflow-recognition-board.export": "/confluence/macros/export?macro=recognition"
                                           "&pageId={page.id}&spaceKey={space.key}"
                                           "&scope={scope}&period={period}",
        # contentBylineItems (inline dialog under the page title)
        "inflow-byline": "/confluence/byline?pageId={content.id}",
        # generalPages: the viewer's own page
        "inflow-me-confluence": "/confluence/me",
    },
}

LIFECYCLE_PATHS = ("/installed", "/uninstalled", "/enabled", "/disabled")


@lru_cache(maxsize=1)
def load_template() -> dict[str, Any]:
    """The descriptor template from the project root (read once)."""
    return json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))


def _fill(value: Any, variables: dict[str, str]) -> Any:
    # Substitute on the parsed structure so no value can break the JSON.
    if isinstance(value, str):
        for name, replacement in variables.items():
            value = value.replace("{{" + name + "}}", replacement)
        return value
    if isinstance(value, list):
        return [_fill(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, variables) for key, item in value.items()}
    return value


def build_descriptor(product: str, base_url: str, app_key: str) -> dict[str, Any]:
    """The descriptor for one product: shared fields plus only that product's modules."""
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}")
    template = copy.deepcopy(load_template())
    product_modules = template.pop("productModules")
    descriptor = _fill(template, {"baseUrl": base_url.rstrip("/"), "appKey": app_key})
    descriptor["modules"] = product_modules[product]
    return descriptor


def module_urls(descriptor: dict[str, Any]) -> dict[str, str]:
    """Every module URL in a descriptor by module key (macro export URLs as `<key>.export`)."""
    urls: dict[str, str] = {}
    for kind, modules in descriptor.get("modules", {}).items():
        if kind == "webhooks":
            continue
        for module in modules:
            url = module.get("url") or module.get("target", {}).get("url")
            urls[module["key"]] = url
            export = module.get("renderModes", {}).get("default", {}).get("url")
            if export:
                urls[f"{module['key']}.export"] = export
    return urls


@bp.get("/<product>/atlassian-connect.json")
def serve(product: str) -> Any:
    """Serve the product's descriptor (public: hosts fetch it before any install)."""
    if product not in PRODUCTS:
        abort(404)
    config = current_app.config
    return jsonify(build_descriptor(product, config["INFLOW_BASE_URL"], config["INFLOW_APP_KEY"]))


def init_app(app: Flask) -> None:
    """Register the descriptor routes."""
    app.register_blueprint(bp)
